"""The CIFAR-10 reader: small files in the exact official format (python 2 pickles of dicts with
bytes keys, in `cifar-10-batches-py/`, tarred as `cifar-10-python.tar.gz`), where they are
looked for, the checksum policy that decides what may be unpickled, safe extraction against
crafted archives, damaged files, and the (offline) download."""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

from tinytorch.datasets import (
    CIFAR10,
    DatasetError,
    download_cifar10,
    extract_cifar10,
    load_cifar10,
    read_batch,
)
from tinytorch.datasets import cifar10 as cifar_module
from tinytorch.datasets.cifar10 import ARCHIVE, CLASSES, FOLDER, NAMES, OFFICIAL

PER_BATCH = 20


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    """No test sees the real cache folder or TINYTORCH_DATA."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    return home


def batch_bytes(seed: int, n: int = PER_BATCH) -> tuple[bytes, np.ndarray, list[int]]:
    """One batch as the official files store it: protocol 2, bytes keys, uint8 (n, 3072)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    content = {b"batch_label": f"batch {seed}".encode(), b"labels": labels, b"data": data,
               b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)]}
    return pickle.dumps(content, protocol=2), data, labels


def meta_bytes() -> bytes:
    return pickle.dumps({b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072,
                         b"label_names": [c.encode() for c in CLASSES]}, protocol=2)


def fake_cifar(root: Path, *, inner: bool = True) -> dict:
    """A tiny CIFAR-10 (20 images per batch) under root/cifar-10-batches-py (or root itself)."""
    folder = root / FOLDER if inner else root
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for seed, name in enumerate(NAMES[:-1]):
        raw, data, labels = batch_bytes(seed)
        (folder / name).write_bytes(raw)
        expected[name] = (data, labels)
    (folder / "batches.meta").write_bytes(meta_bytes())
    (folder / "readme.html").write_text("<html></html>")
    return expected


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def fake_archive(path: Path, source: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source / FOLDER, arcname=FOLDER)
    return path


def assert_one_line(error: pytest.ExceptionInfo, *words: str) -> str:
    text = str(error.value)
    assert "\n" not in text, f"the message must be one line: {text!r}"
    for word in words:
        assert word in text, f"{word!r} not in {text!r}"
    return text


# --- reading ---------------------------------------------------------------------------------


def test_reads_the_official_format_from_an_explicit_folder(tmp_path):
    expected = fake_cifar(tmp_path)
    data = load_cifar10(tmp_path)
    assert isinstance(data, CIFAR10) and not data.full
    x_train, y_train, x_test, y_test = data
    assert x_train.shape == (100, 3, 32, 32) and x_train.dtype == np.float32
    assert x_test.shape == (20, 3, 32, 32) and y_train.dtype == np.int64 == y_test.dtype
    want = np.concatenate([expected[f"data_batch_{i}"][0] for i in range(1, 6)])
    # row = 1024 red, 1024 green, 1024 blue values, each 32 rows of 32
    assert np.array_equal(x_train, want.reshape(-1, 3, 32, 32) / np.float32(255))
    assert x_train[0, 1, 0, 5] == want[0, 1024 + 5] / np.float32(255), "the green plane starts at 1024"
    assert y_train.tolist() == sum((expected[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert y_test.tolist() == expected["test_batch"][1]
    assert data.classes == CLASSES
    assert data.source == str(tmp_path / FOLDER) and "CIFAR-10-format data: 100 training" in data.describe()


def test_options_channels_last_and_raw_bytes(tmp_path):
    fake_cifar(tmp_path, inner=False)  # the batch files directly in the folder
    raw = load_cifar10(tmp_path, normalize=False)
    nhwc = load_cifar10(tmp_path, normalize=False, channels_last=True)
    assert raw.x_train.dtype == np.uint8 and nhwc.x_train.shape == (100, 32, 32, 3)
    assert np.array_equal(nhwc.x_train, raw.x_train.transpose(0, 2, 3, 1))
    assert nhwc.x_train.flags["C_CONTIGUOUS"]


def test_reads_from_the_archive_and_extracts_it_once(tmp_path):
    fake_cifar(tmp_path / "made")
    folder = tmp_path / "data"
    folder.mkdir()
    fake_archive(folder / ARCHIVE, tmp_path / "made")
    first = load_cifar10(folder)
    assert (folder / FOLDER / "data_batch_3").is_file()
    assert not (folder / FOLDER / "readme.html").exists(), "only the batches and the meta are written"
    assert np.array_equal(first.x_train, load_cifar10(tmp_path / "made").x_train)
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temporary folder is left"


def test_read_batch_returns_the_stored_dict(tmp_path):
    raw, data, labels = batch_bytes(7)
    (tmp_path / "b").write_bytes(raw)
    content = read_batch(tmp_path / "b")
    assert np.array_equal(content[b"data"], data) and content[b"labels"] == labels


# --- where the files are ---------------------------------------------------------------------


def test_lookup_order_env_then_cache(tmp_path, monkeypatch, no_user_data):
    with pytest.raises(DatasetError) as error:
        load_cifar10()
    assert_one_line(error, "not on this machine", "download_cifar10()", str(no_user_data))
    monkeypatch.setattr(cifar_module, "OFFICIAL", {name: ("0" * 32, 10**9) for name in NAMES})
    cache = no_user_data / ".tinytorch" / "data" / "cifar10"
    fake_cifar(cache)
    with pytest.raises(DatasetError) as error:  # a cache folder must hold the official files
        load_cifar10()
    assert_one_line(error, "not the official CIFAR-10 file", "not unpickled")
    assert load_cifar10(verify=False).source == str(cache / FOLDER)
    env = tmp_path / "env"
    fake_cifar(env / "cifar10")
    monkeypatch.setenv("TINYTORCH_DATA", str(env))
    assert load_cifar10(verify=False).source == str(env / "cifar10" / FOLDER), "TINYTORCH_DATA comes first"


def test_official_md5s_let_the_cache_load(no_user_data, monkeypatch):
    cache = no_user_data / ".tinytorch" / "data" / "cifar10"
    fake_cifar(cache)
    official = {name: (hashlib.md5((cache / FOLDER / name).read_bytes()).hexdigest(), 10**9) for name in NAMES}
    monkeypatch.setattr(cifar_module, "OFFICIAL", official)
    assert len(load_cifar10().x_train) == 100


def test_explicit_folder_missing_files_are_named(tmp_path):
    fake_cifar(tmp_path)
    (tmp_path / FOLDER / "data_batch_4").unlink()
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path)
    assert_one_line(error, "lacks 1 of the 7", "data_batch_4", ARCHIVE)
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path / "nowhere")
    assert_one_line(error, "is not a folder")


def test_an_official_size_file_must_have_the_official_md5(tmp_path, monkeypatch):
    fake_cifar(tmp_path)
    size = (tmp_path / FOLDER / "data_batch_2").stat().st_size
    monkeypatch.setitem(cifar_module.OFFICIAL, "data_batch_2", ("0" * 32, size))
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path)
    assert_one_line(error, "data_batch_2", "is damaged", "md5", "download_cifar10()")
    assert len(load_cifar10(tmp_path, verify=False).x_train) == 100


def test_official_table_is_complete():
    assert set(OFFICIAL) == set(NAMES)
    assert OFFICIAL["data_batch_1"] == ("c99cafc152244af753f735de768cd75f", 31_035_704)
    assert cifar_module.ARCHIVE_MD5 == "c58f30108f718f92721af3b95e74349a"


# --- damaged files ---------------------------------------------------------------------------


def _damage_cases():
    raw, _, _ = batch_bytes(1)
    good_labels = list(range(10)) * 2
    return {
        "truncated": (raw[: len(raw) // 2], ["truncated"]),
        "empty": (b"", ["truncated"]),
        "garbage": (b"this is not a pickle", ["cannot unpickle"]),
        "a list": (pickle.dumps([1, 2, 3], protocol=2), ["holds a list"]),
        "no data": (pickle.dumps({b"labels": good_labels}, protocol=2), ['lacks b"data"']),
        "wrong width": (pickle.dumps({b"data": np.zeros((20, 100), np.uint8), b"labels": good_labels},
                                     protocol=2), ["(N, 3072)"]),
        "float data": (pickle.dumps({b"data": np.zeros((20, 3072)), b"labels": good_labels}, protocol=2),
                       ["uint8"]),
        "few labels": (pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": [1, 2]},
                                    protocol=2), ["2 labels", "20 images"]),
        "label 10": (pickle.dumps({b"data": np.zeros((20, 3072), np.uint8), b"labels": [10] * 20},
                                  protocol=2), ["label 10", "0-9"]),
    }


@pytest.mark.parametrize("case", list(_damage_cases()))
def test_damaged_batches_raise_one_line_naming_the_file(tmp_path, case):
    content, words = _damage_cases()[case]
    fake_cifar(tmp_path)
    (tmp_path / FOLDER / "data_batch_3").write_bytes(content)
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path)
    assert_one_line(error, str(tmp_path / FOLDER / "data_batch_3"), *words)


def test_meta_without_names(tmp_path):
    fake_cifar(tmp_path)
    (tmp_path / FOLDER / "batches.meta").write_bytes(pickle.dumps({b"num_vis": 3072}, protocol=2))
    with pytest.raises(DatasetError) as error:
        load_cifar10(tmp_path)
    assert_one_line(error, "batches.meta", "label_names")


def test_truncated_archive(tmp_path):
    fake_cifar(tmp_path / "made")
    archive = fake_archive(tmp_path / ARCHIVE, tmp_path / "made")
    archive.write_bytes(archive.read_bytes()[:5000])
    with pytest.raises(DatasetError) as error:
        extract_cifar10(archive, tmp_path / "out")
    assert_one_line(error, str(archive), "not a complete tar.gz")
    assert not (tmp_path / "out" / FOLDER).exists()


# --- safe extraction -------------------------------------------------------------------------


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info, None


MALICIOUS = {
    "absolute path": [_file("/tmp/tinytorch-evil")],
    "dot-dot": [_file(f"{FOLDER}/../../evil")],
    "outside the folder": [_file("evil.py")],
    "symlink": [_special(f"{FOLDER}/data_batch_1", tarfile.SYMTYPE, "/etc/passwd")],
    "hard link": [_special(f"{FOLDER}/data_batch_1", tarfile.LNKTYPE, "/etc/passwd")],
    "device": [_special(f"{FOLDER}/dev", tarfile.CHRTYPE)],
    "fifo": [_special(f"{FOLDER}/fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_malicious_archives_are_refused_before_anything_is_written(tmp_path, case):
    fake_cifar(tmp_path / "made")
    good = [_file(f"{FOLDER}/{name}", (tmp_path / "made" / FOLDER / name).read_bytes()) for name in NAMES]
    archive = make_tar(tmp_path / ARCHIVE, good + MALICIOUS[case])  # the bad member comes last
    dest = tmp_path / "out"
    with pytest.raises(DatasetError) as error:
        extract_cifar10(archive, dest)
    assert_one_line(error, "is unsafe", "nothing was extracted")
    assert not dest.exists() or not any(dest.rglob("*")), "nothing may be written"
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.py").exists()


def test_archive_missing_a_batch(tmp_path):
    archive = make_tar(tmp_path / ARCHIVE, [_file(f"{FOLDER}/data_batch_1")])
    with pytest.raises(DatasetError) as error:
        extract_cifar10(archive, tmp_path / "out")
    assert_one_line(error, "lacks", "test_batch")


# --- the download (offline, loopback only) ---------------------------------------------------


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def test_download_offline_message(tmp_path, no_proxy):
    dest = tmp_path / "c"
    with pytest.raises(DatasetError) as error:
        download_cifar10(dest, urls=["http://127.0.0.1:9/cifar-10-python.tar.gz"], timeout=2)
    assert_one_line(error, "unreachable", "127.0.0.1", "by hand", str(dest))
    assert list(dest.iterdir()) == [], "no partial file is left"


def test_download_default_destination_is_the_cache(no_user_data, no_proxy):
    with pytest.raises(DatasetError) as error:
        download_cifar10(urls=["http://127.0.0.1:9/x"], timeout=2)
    assert_one_line(error, str(no_user_data / ".tinytorch" / "data" / "cifar10"))


@pytest.fixture
def local_server(tmp_path):
    served = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            body = served.get(self.path.lstrip("/"))
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            if body is not None:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_checks_md5_extracts_and_loads(tmp_path, monkeypatch, local_server, no_proxy):
    served, url = local_server
    fake_cifar(tmp_path / "made")
    body = fake_archive(tmp_path / "a.tar.gz", tmp_path / "made").read_bytes()
    served[ARCHIVE] = body
    dest = tmp_path / "dl"
    with pytest.raises(DatasetError) as error:  # a server that sends something else
        download_cifar10(dest, urls=[url + ARCHIVE], timeout=5)
    assert_one_line(error, "did not send the official file", "Nothing was kept")
    assert not (dest / ARCHIVE).exists()
    monkeypatch.setattr(cifar_module, "ARCHIVE_MD5", hashlib.md5(body).hexdigest())
    folder = download_cifar10(dest, urls=["http://127.0.0.1:9/x", url + ARCHIVE], timeout=5)
    assert folder == dest / FOLDER and (dest / ARCHIVE).read_bytes() == body
    served.clear()
    assert download_cifar10(dest, urls=["http://127.0.0.1:9/x"], timeout=2) == folder, \
        "an archive already there and correct is not downloaded again"
    assert len(load_cifar10(dest).x_train) == 100
