// colorem page: pick or drop a photo, send it to POST /api/colorize, show the result beside the input.
// Plain browser JavaScript, no framework and no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  file: $("file"), drop: $("drop"), limits: $("limits"), samples: $("samples"),
  saturation: $("saturation"), saturationValue: $("saturation-value"), renderSize: $("render-size"), format: $("format"),
  progress: $("progress"), statusText: $("status-text"), error: $("error"),
  compare: $("compare"), stage: $("stage"), before: $("before"), after: $("after"), slider: $("slider"),
  empty: $("empty"), download: $("download"), originalLink: $("original-link"),
};

let config = { max_upload_bytes: 20 * 1024 * 1024, render_size: 256, render_size_range: [16, 1024] };
let current = null;        // { blob, name, label, originalUrl }
let request = null;        // the XMLHttpRequest in flight, aborted when a newer one starts
let urls = { before: null, after: null };
let debounce = null;

function megabytes(bytes) {
  return (bytes / 1024 / 1024).toFixed(bytes < 10 * 1024 * 1024 ? 1 : 0) + " MB";
}

function setStatus(text, progress) {
  ui.statusText.textContent = text;
  if (progress === undefined) {
    ui.progress.hidden = true;
  } else {
    ui.progress.hidden = false;
    if (progress === null) ui.progress.removeAttribute("value"); // indeterminate: the server is working
    else ui.progress.value = progress;
  }
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
  if (message) {  // the previous result no longer matches what was chosen
    ui.compare.hidden = true;
    ui.download.hidden = true;
    ui.originalLink.hidden = true;
    ui.empty.hidden = false;
  }
}

function replaceUrl(key, blob) {
  if (urls[key]) URL.revokeObjectURL(urls[key]);
  urls[key] = blob ? URL.createObjectURL(blob) : null;
  return urls[key];
}

// --- choosing a photo ------------------------------------------------------------------------
function choose(blob, name, label, originalUrl) {
  showError("");
  if (blob.size > config.max_upload_bytes) {
    showError(`“${name}” is ${megabytes(blob.size)}; the largest photo accepted is ${megabytes(config.max_upload_bytes)}.`);
    setStatus("Choose a smaller photo.");
    return;
  }
  current = { blob, name, label, originalUrl };
  colorize();
}

ui.file.addEventListener("change", () => {
  const file = ui.file.files[0];
  if (file) {
    markSample(null);
    choose(file, file.name, file.name);
  }
  ui.file.value = ""; // choosing the same file again still triggers a change
});

["dragenter", "dragover"].forEach((type) => ui.drop.addEventListener(type, (event) => {
  event.preventDefault();
  ui.drop.classList.add("dragging");
}));
["dragleave", "drop"].forEach((type) => ui.drop.addEventListener(type, () => ui.drop.classList.remove("dragging")));
ui.drop.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) {
    markSample(null);
    choose(file, file.name, file.name);
  }
});
// Dropping a file anywhere else must not navigate away from the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

function markSample(button) {
  ui.samples.querySelectorAll("button").forEach((item) => item.setAttribute("aria-pressed", String(item === button)));
}

async function pickSample(sample, button) {
  markSample(button);
  showError("");
  setStatus(`Loading the sample “${sample.title}”…`, null);
  try {
    const response = await fetch(sample.url);
    if (!response.ok) throw new Error(await errorMessage(response));
    choose(await response.blob(), sample.name, sample.description, sample.original_url);
  } catch (error) {
    setStatus("");
    showError(`Could not load the sample: ${error.message}`);
  }
}

async function loadSamples() {
  try {
    const response = await fetch("/api/samples");
    const { samples } = await response.json();
    for (const sample of samples) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-pressed", "false");
      button.title = sample.description;
      const image = document.createElement("img");
      image.src = sample.url;
      image.alt = `Sample: ${sample.description}`;
      image.loading = "lazy";
      const caption = document.createElement("span");
      caption.textContent = sample.title;
      button.append(image, caption);
      button.addEventListener("click", () => pickSample(sample, button));
      item.append(button);
      ui.samples.append(item);
    }
  } catch (error) {
    ui.samples.textContent = "The samples could not be loaded.";
  }
}

// --- colorizing ------------------------------------------------------------------------------
// `response` is a fetch Response or a Blob with a status: both have text().
async function errorMessage(response) {
  try {
    const body = await response.text();
    const parsed = JSON.parse(body);
    if (parsed && parsed.error) return parsed.error;
  } catch (ignored) { /* not JSON: fall through */ }
  return `The server answered ${response.status || "with an error"}.`;
}

function colorize() {
  if (!current) return;
  if (request) request.abort();
  const photo = current;
  const form = new FormData();
  form.append("file", photo.blob, photo.name);
  form.append("saturation", ui.saturation.value);
  form.append("render_size", ui.renderSize.value);
  form.append("format", ui.format.value);

  const xhr = new XMLHttpRequest();
  request = xhr;
  xhr.open("POST", "/api/colorize");
  xhr.responseType = "blob";
  document.body.classList.add("busy");
  ui.download.hidden = true;
  setStatus(`Uploading “${photo.name}”…`, 0);
  xhr.upload.onprogress = (event) => {
    if (event.lengthComputable) setStatus(`Uploading “${photo.name}”…`, event.loaded / event.total);
  };
  xhr.upload.onload = () => setStatus("Colorizing…", null);
  xhr.onerror = () => finish(xhr, () => {
    setStatus("");
    showError("The server could not be reached. Check your connection and try again.");
  });
  xhr.onload = () => finish(xhr, async () => {
    if (xhr.status !== 200) {
      setStatus("");
      showError(await errorMessage(Object.assign(xhr.response || new Blob(), { status: xhr.status })));
      return;
    }
    showResult(photo, xhr.response, xhr.getResponseHeader("Content-Disposition"), xhr.getResponseHeader("Server-Timing"));
  });
  xhr.send(form);
}

function finish(xhr, then) {
  if (request !== xhr) return; // a newer request replaced this one
  request = null;
  document.body.classList.remove("busy");
  then();
}

function showResult(photo, blob, disposition, timing) {
  const match = /filename="([^"]+)"/.exec(disposition || "");
  const filename = match ? match[1] : "colorized." + ui.format.value;
  ui.before.src = replaceUrl("before", photo.blob);
  ui.before.alt = `Before: ${photo.label}, in black and white`;
  ui.after.src = replaceUrl("after", blob);
  ui.after.alt = `After: ${photo.label}, colorized`;
  ui.download.href = urls.after;
  ui.download.download = filename;
  ui.download.textContent = `Download ${filename}`;
  ui.download.hidden = false;
  ui.originalLink.hidden = !photo.originalUrl;
  if (photo.originalUrl) ui.originalLink.href = photo.originalUrl;
  ui.compare.hidden = false;
  ui.empty.hidden = true;
  const seconds = /dur=([\d.]+)/.exec(timing || "");
  setStatus(seconds ? `Done in ${(Number(seconds[1]) / 1000).toFixed(2)} s.` : "Done.");
  if (window.matchMedia("(max-width: 800px)").matches) ui.compare.scrollIntoView({ behavior: "smooth", block: "start" });
}

// --- the before/after slider -----------------------------------------------------------------
function moveSlider() {
  ui.stage.style.setProperty("--pos", `${ui.slider.value}%`);
  ui.slider.setAttribute("aria-valuetext", `${ui.slider.value}% black and white`);
}
ui.slider.addEventListener("input", moveSlider);
moveSlider();

// --- controls --------------------------------------------------------------------------------
function colorizeSoon() {
  clearTimeout(debounce);
  debounce = setTimeout(colorize, 350);
}
ui.saturation.addEventListener("input", () => {
  ui.saturationValue.textContent = `${Math.round(ui.saturation.value * 100)}%`;
  colorizeSoon();
});
ui.renderSize.addEventListener("change", colorizeSoon);
ui.format.addEventListener("change", colorizeSoon);

async function loadConfig() {
  try {
    const response = await fetch("/api/config");
    if (response.ok) config = await response.json();
  } catch (ignored) { /* keep the defaults */ }
  ui.limits.textContent = `JPEG, PNG, WebP, BMP, TIFF or GIF, up to ${megabytes(config.max_upload_bytes)}.`;
  const [low, high] = config.render_size_range;
  const sizes = new Set([128, 192, 256, 384, 512, 768, 1024, config.render_size]);
  for (const size of [...sizes].filter((s) => s >= low && s <= high).sort((a, b) => a - b)) {
    const option = new Option(size === config.render_size ? `${size} px (model default)` : `${size} px`, String(size));
    option.selected = size === config.render_size;
    ui.renderSize.append(option);
  }
}

loadConfig();
loadSamples();
