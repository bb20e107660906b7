// The capstone page: stream /generate's NDJSON lines into the output as they come, and send a
// drawn or uploaded digit to /classify. Plain browser JavaScript: no build step, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);

async function errorOf(response) {
  try {
    const body = await response.json();
    return body.error || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status} ${response.statusText}`;
  }
}

// --- the server's state ------------------------------------------------------------------------

async function checkHealth() {
  try {
    const health = await (await fetch("/health")).json();
    const parts = [];
    parts.push(health.language ? `language model: ${health.language.source || health.language.file}`
                               : "no language model loaded");
    parts.push(health.vision ? `digit model: ${health.vision.source || health.vision.file}`
                             : "no digit model loaded");
    $("health").textContent = parts.join(" · ");
    $("max-tokens").max = health.limits.max_new_tokens;
    $("prompt").maxLength = health.limits.max_prompt_chars;
  } catch (error) {
    $("health").textContent = `The server does not answer: ${error}`;
  }
}

// --- generation --------------------------------------------------------------------------------

let controller = null;

async function generate(event) {
  event.preventDefault();
  $("generate-error").textContent = "";
  $("generate-stats").textContent = "";
  const output = $("output");
  output.textContent = "";
  const prompt = document.createElement("span");
  prompt.className = "prompt";
  prompt.textContent = $("prompt").value;
  const text = document.createElement("span");
  text.id = "generated";
  output.append(prompt, text);
  controller = new AbortController();
  $("generate").disabled = true;
  $("stop").disabled = false;
  try {
    const response = await fetch("/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        prompt: $("prompt").value,
        max_new_tokens: Number($("max-tokens").value),
        temperature: Number($("temperature").value),
      }),
      signal: controller.signal,
    });
    if (!response.ok) {
      $("generate-error").textContent = await errorOf(response);
      return;
    }
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      const lines = pending.split("\n");
      pending = lines.pop();
      for (const line of lines.filter(Boolean)) {
        const record = JSON.parse(line);
        if (record.done) {
          $("generate-stats").textContent = `${record.tokens} tokens in ${record.seconds.toFixed(2)} s` +
            (record.tokens_per_second ? ` (${record.tokens_per_second.toFixed(0)} tokens/s)` : "") +
            (record.first_token_seconds !== null ? `, first after ${(1000 * record.first_token_seconds).toFixed(0)} ms` : "");
          if (record.error) $("generate-error").textContent = record.error;
        } else {
          text.textContent += record.text;
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") $("generate-error").textContent = `The request failed: ${error.message}`;
  } finally {
    controller = null;
    $("generate").disabled = false;
    $("stop").disabled = true;
  }
}

// --- digits ------------------------------------------------------------------------------------

const pad = $("pad");
const ink = pad.getContext("2d");

function clearPad() {
  ink.fillStyle = "#000";
  ink.fillRect(0, 0, pad.width, pad.height);
}

let drawing = false;
function position(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  ink.beginPath();
  ink.moveTo(...position(event));
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  ink.strokeStyle = "#fff";
  ink.lineWidth = 22;
  ink.lineCap = ink.lineJoin = "round";
  ink.lineTo(...position(event));
  ink.stroke();
});
pad.addEventListener("pointerup", () => { drawing = false; });

// The drawing at MNIST's size: 28x28, white on black, as the model was trained on.
function drawingAsPng() {
  const small = document.createElement("canvas");
  small.width = small.height = 28;
  const context = small.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(pad, 0, 0, 28, 28);
  return new Promise((resolve) => small.toBlob(resolve, "image/png"));
}

function showProbabilities(result) {
  const bars = $("bars");
  bars.textContent = "";
  const entries = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of entries) {
    const item = document.createElement("li");
    item.dataset.class = name;
    if (name === result.top) item.className = "top";
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.max(1, 100 * p)}%`;
    const value = document.createElement("span");
    value.textContent = `${(100 * p).toFixed(1)}%`;
    item.append(label, bar, value);
    bars.append(item);
  }
  $("top").textContent = `The model reads: ${result.top}`;
}

async function classify(blob, type) {
  $("classify-error").textContent = "";
  try {
    const response = await fetch("/classify", { method: "POST", headers: { "Content-Type": type }, body: blob });
    if (!response.ok) {
      $("classify-error").textContent = await errorOf(response);
      return;
    }
    showProbabilities(await response.json());
  } catch (error) {
    $("classify-error").textContent = `The request failed: ${error.message}`;
  }
}

$("generate-form").addEventListener("submit", generate);
$("stop").addEventListener("click", () => controller && controller.abort());
$("temperature").addEventListener("input", () => { $("temperature-value").textContent = $("temperature").value; });
$("clear").addEventListener("click", clearPad);
$("classify").addEventListener("click", async () => classify(await drawingAsPng(), "image/png"));
$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  const pgm = file.name.toLowerCase().endsWith(".pgm");
  classify(file, pgm ? "image/x-portable-graymap" : "image/png");
  if (!pgm) showUpload(file);  // the browser decodes PNG, not PGM: the pad shows what was sent
});

// The uploaded image, scaled up without smoothing onto the pad, so the page shows what it read.
async function showUpload(file) {
  try {
    const picture = await createImageBitmap(file);
    clearPad();
    ink.imageSmoothingEnabled = false;
    ink.drawImage(picture, 0, 0, pad.width, pad.height);
  } catch (error) {
    // not an image the browser can draw: the server's answer says what is wrong with it
  }
}
clearPad();
checkHealth();
