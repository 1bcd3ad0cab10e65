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
  hints: $("hints"), hintTools: $("hint-tools"), hintsUnavailable: $("hints-unavailable"), markers: $("markers"),
  hintMode: $("hint-mode"), hintsList: $("hints-list"), hintsExport: $("hints-export"), hintsImport: $("hints-import"),
  hintsClear: $("hints-clear"), hintsMessage: $("hints-message"),
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

// keepResult: the error is about the hints (e.g. the server refused them), so the photo, its last result and
// the hint tools stay, and the hints can be fixed or removed there.
function showError(message, keepResult = false) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
  if (message && !keepResult) {  // the previous result no longer matches what was chosen
    ui.compare.hidden = true;
    ui.download.hidden = true;
    ui.originalLink.hidden = true;
    ui.empty.hidden = false;
    ui.hints.hidden = true;
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
  hints = []; // hints are in one photo's pixels
  renderHints();
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
    if (!response.ok) throw new Error((await errorMessage(response)).message);
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
// -> { message, hints: whether the server refused the hints }
async function errorMessage(response) {
  try {
    const body = await response.text();
    const parsed = JSON.parse(body);
    if (parsed && parsed.error) {
      const fields = Array.isArray(parsed.detail) ? parsed.detail.map((problem) => problem && problem.field) : [];
      return { message: parsed.error, hints: fields.length > 0 && fields.every((field) => field === "hints") };
    }
  } catch (ignored) { /* not JSON: fall through */ }
  return { message: `The server answered ${response.status || "with an error"}.`, hints: false };
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
  const sentHints = JSON.stringify(hintsJson());
  if (config.accepts_hints && hints.length) form.append("hints", sentHints);

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
      const { message, hints: aboutHints } = await errorMessage(Object.assign(xhr.response || new Blob(), { status: xhr.status }));
      showError(message, aboutHints && !ui.compare.hidden);
      return;
    }
    showResult(photo, xhr.response, xhr.getResponseHeader("Content-Disposition"), performance.now() - sent);
    ui.after.dataset.hints = sentHints; // which hints this result shows (tests wait on it)
  });
  const sent = performance.now();
  xhr.send(form);
}

function finish(xhr, then) {
  if (request !== xhr) return; // a newer request replaced this one
  request = null;
  document.body.classList.remove("busy");
  then();
}

// The server's name for the download: RFC 6266's filename* (UTF-8, e.g. a name in Chinese) when given, else filename.
function downloadName(disposition) {
  const full = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (full) {
    try { return decodeURIComponent(full[1]); } catch (error) { /* malformed: use the ASCII name */ }
  }
  const plain = /filename="([^"]+)"/.exec(disposition || "");
  return plain ? plain[1] : null;
}

function showResult(photo, blob, disposition, milliseconds) {
  const filename = downloadName(disposition) || "colorized." + ui.format.value;
  ui.before.classList.remove("from-result");
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
  ui.hints.hidden = false;
  setStatus(`Done in ${(milliseconds / 1000).toFixed(2)} s.`);
  if (window.matchMedia("(max-width: 800px)").matches) ui.compare.scrollIntoView({ behavior: "smooth", block: "start" });
}

// A photo the browser cannot show (TIFF): the before side becomes the result, shown in gray like any before
// side (.before's filter), whose lightness is the photo's.
ui.before.addEventListener("error", () => {
  if (!urls.after || ui.before.classList.contains("from-result")) return;
  ui.before.classList.add("from-result");
  ui.before.src = urls.after;
});

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
  ui.limits.textContent = `JPEG, PNG, WebP, TIFF, BMP, GIF or PGM/PPM, up to ${megabytes(config.max_upload_bytes)}.`;
  const [low, high] = config.render_size_range;
  const sizes = new Set([128, 192, 256, 384, 512, 768, 1024, config.render_size]);
  for (const size of [...sizes].filter((s) => s >= low && s <= high).sort((a, b) => a - b)) {
    const option = new Option(size === config.render_size ? `${size} px (model default)` : `${size} px`, String(size));
    option.selected = size === config.render_size;
    ui.renderSize.append(option);
  }
}

// --- colour hints ----------------------------------------------------------------------------
// A hint is {x, y, color} in the photo's own pixels (the JSON `colorem colorize --hints` reads). Each
// change re-colorizes (debounced); markers sit over the photo in percent, so they follow its display size.
let hints = [];
let resultPixels = null; // a canvas of the current result, to read the colour colorem predicted at a point

ui.after.addEventListener("load", () => { resultPixels = null; }); // read colours from the newest result

function photoSize() {
  return [ui.after.naturalWidth, ui.after.naturalHeight];
}

function hintsJson() {
  return hints.map(({ x, y, color }) => ({ x, y, color }));
}

function predictedColor(x, y) {
  if (!resultPixels) {
    const [width, height] = photoSize();
    resultPixels = document.createElement("canvas");
    resultPixels.width = width;
    resultPixels.height = height;
    resultPixels.getContext("2d", { willReadFrequently: true }).drawImage(ui.after, 0, 0);
  }
  const [r, g, b] = resultPixels.getContext("2d", { willReadFrequently: true }).getImageData(x, y, 1, 1).data;
  return "#" + [r, g, b].map((value) => value.toString(16).padStart(2, "0")).join("");
}

function pointFromEvent(event) {
  const box = ui.markers.getBoundingClientRect();
  const [width, height] = photoSize();
  const clamp = (value, high) => Math.min(Math.max(Math.round(value), 0), high - 1);
  return [clamp((event.clientX - box.left) / box.width * width, width),
          clamp((event.clientY - box.top) / box.height * height, height)];
}

function hintsChanged() {
  renderHints();
  colorizeSoon();
}

function renderHints() {
  const [width, height] = photoSize();
  ui.markers.replaceChildren();
  ui.hintsList.replaceChildren();
  hints.forEach((hint, index) => {
    const label = `Hint ${index + 1} at ${hint.x}, ${hint.y}`;
    const marker = document.createElement("button");
    marker.type = "button";
    marker.className = "marker";
    marker.style.left = `${(hint.x + 0.5) / width * 100}%`;
    marker.style.top = `${(hint.y + 0.5) / height * 100}%`;
    marker.style.background = hint.color;
    marker.setAttribute("aria-label", `${label}, ${hint.color}: drag or use the arrow keys to move, Delete to remove`);
    marker.addEventListener("pointerdown", (event) => dragHint(event, hint, marker));
    marker.addEventListener("keydown", (event) => keyHint(event, hint));
    ui.markers.append(marker);

    const item = document.createElement("li");
    const picker = document.createElement("input");
    picker.type = "color";
    picker.value = hint.color;
    picker.setAttribute("aria-label", `Colour of hint ${index + 1}`);
    picker.addEventListener("input", () => {
      hint.color = picker.value;
      marker.style.background = hint.color;
      colorizeSoon();
    });
    const text = document.createElement("span");
    text.textContent = label;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button small";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove hint ${index + 1}`);
    remove.addEventListener("click", () => {
      hints.splice(hints.indexOf(hint), 1);
      hintsChanged();
    });
    item.append(picker, text, remove);
    ui.hintsList.append(item);
    hint.picker = picker;
  });
  ui.hintsExport.disabled = ui.hintsClear.disabled = hints.length === 0;
  ui.hintsMessage.textContent = hints.length ? `${hints.length} hint${hints.length === 1 ? "" : "s"}.` : "";
}

function openPicker(hint) {
  hint.picker.focus();
  try {
    hint.picker.showPicker(); // needs the click that placed the hint (user activation)
  } catch (ignored) { /* older browsers: the focused colour field is one click away */ }
}

// A new hint at (x, y) with colorem's colour there; null when there are as many as the server takes.
function addHint(x, y) {
  if (!placing() || !config.accepts_hints) return null;
  if (hints.length >= (config.max_hints || 256)) {
    ui.hintsMessage.textContent = `At most ${config.max_hints} hints.`;
    return null;
  }
  const hint = { x, y, color: predictedColor(x, y) };
  hints.push(hint);
  renderHints(); // not re-colorized yet: the predicted colour changes nothing until it is picked
  return hint;
}

function placeHint(event) {
  if (event.target !== ui.markers) return;
  const hint = addHint(...pointFromEvent(event));
  if (hint) openPicker(hint);
}

// By keyboard: Enter or Space on the photo places a hint at its centre, focused so the arrow keys move it.
function placeHintByKey(event) {
  if (event.target !== ui.markers || (event.key !== "Enter" && event.key !== " ")) return;
  event.preventDefault();
  const [width, height] = photoSize();
  if (!addHint(Math.floor(width / 2), Math.floor(height / 2))) return;
  ui.markers.lastElementChild.focus();
  ui.hintsMessage.textContent += " Move the new hint with the arrow keys; pick its colour in the list below.";
}

function dragHint(event, hint, marker) {
  event.preventDefault();
  marker.setPointerCapture(event.pointerId);
  const start = [hint.x, hint.y];
  const move = (moveEvent) => {
    [hint.x, hint.y] = pointFromEvent(moveEvent);
    const [width, height] = photoSize();
    marker.style.left = `${(hint.x + 0.5) / width * 100}%`;
    marker.style.top = `${(hint.y + 0.5) / height * 100}%`;
  };
  const end = () => {
    marker.removeEventListener("pointermove", move);
    marker.removeEventListener("pointerup", end);
    marker.removeEventListener("pointercancel", end);
    if (hint.x !== start[0] || hint.y !== start[1]) hintsChanged();
    else openPicker(hint); // a click without a drag: choose its colour
  };
  marker.addEventListener("pointermove", move);
  marker.addEventListener("pointerup", end);
  marker.addEventListener("pointercancel", end);
}

function keyHint(event, hint) {
  const [width, height] = photoSize();
  const step = Math.max(1, Math.round(Math.max(width, height) / 100));
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  let index = hints.indexOf(hint);
  if (event.key === "Delete" || event.key === "Backspace") {
    hints.splice(index, 1);
    index = Math.max(0, index - 1); // the focus goes to the hint before it
  } else if (moves[event.key]) {
    hint.x = Math.min(Math.max(hint.x + moves[event.key][0], 0), width - 1);
    hint.y = Math.min(Math.max(hint.y + moves[event.key][1], 0), height - 1);
  } else {
    return;
  }
  event.preventDefault();
  hintsChanged();
  (ui.markers.children[index] || ui.markers).focus(); // the last one deleted: the photo itself
}

function placing() {
  return ui.hintMode.getAttribute("aria-pressed") === "true";
}

ui.hintMode.addEventListener("click", () => {
  const on = !placing();
  ui.hintMode.setAttribute("aria-pressed", String(on));
  ui.stage.classList.toggle("placing", on);
  ui.markers.tabIndex = on ? 0 : -1; // reachable by Tab while placing: Enter places a hint at the centre
});
ui.markers.addEventListener("click", placeHint);
ui.markers.addEventListener("keydown", placeHintByKey);

ui.hintsClear.addEventListener("click", () => {
  hints = [];
  hintsChanged();
});

ui.hintsExport.addEventListener("click", () => {
  const blob = new Blob([JSON.stringify(hintsJson(), null, 2) + "\n"], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${(current ? current.name : "photo").replace(/\.[^.]*$/, "")}-hints.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
});

// A colour as the server takes it ("#36a", "3a6ea5", a CSS name such as "firebrick") -> "#rrggbb", or null.
// The browser's own CSS parser reads it: a canvas keeps a fillStyle it understands and ignores any other.
function hexColor(text) {
  if (typeof text !== "string") return null;
  const trimmed = text.trim();
  if (/^currentcolor$/i.test(trimmed)) return null; // the canvas's current colour (black), not one the server knows
  // hex or a name only: the canvas would also read rgb(), hsl() and #rgba, which the server refuses
  const hex = /^#?([0-9a-f]{6}|[0-9a-f]{3})$/i.exec(trimmed);
  if (!hex && !/^[a-z]+$/i.test(trimmed)) return null;
  const color = hex ? "#" + hex[1] : trimmed;
  const context = document.createElement("canvas").getContext("2d");
  const read = ["#000000", "#ffffff"].map((sentinel) => {
    context.fillStyle = sentinel;
    context.fillStyle = color;
    return context.fillStyle;
  });
  return read[0] === read[1] && /^#[0-9a-f]{6}$/.test(read[0]) ? read[0] : null;
}

// The same checks as the server, so a bad file is reported here and the photo stays as it is.
function readHints(text) {
  let data = JSON.parse(text);
  if (data && !Array.isArray(data) && Array.isArray(data.hints)) data = data.hints;
  if (!Array.isArray(data)) throw new Error("expected a list of {x, y, color}");
  const most = config.max_hints || 256;
  if (data.length > most) throw new Error(`${data.length} hints; at most ${most} are allowed`);
  const [width, height] = photoSize();
  return data.map((item, index) => {
    const color = item ? hexColor(item.color) : null;
    if (!(item && Number.isFinite(item.x) && Number.isFinite(item.y) && color)) {
      throw new Error(`hint ${index + 1} is not {x, y, color: "#rrggbb" or a colour name}`);
    }
    const unknown = Object.keys(item).filter((key) => !["x", "y", "color"].includes(key));
    if (unknown.length) throw new Error(`hint ${index + 1} has x, y and color only, not ${unknown.join(", ")}`);
    if (item.x < 0 || item.x >= width || item.y < 0 || item.y >= height) {
      throw new Error(`hint ${index + 1} at (${item.x}, ${item.y}) lies outside this ${width}×${height} photo`);
    }
    return { x: item.x, y: item.y, color };
  });
}

ui.hintsImport.addEventListener("change", async () => {
  const file = ui.hintsImport.files[0];
  ui.hintsImport.value = "";
  if (!file) return;
  try {
    hints = readHints(await file.text());
    hintsChanged();
  } catch (error) {
    ui.hintsMessage.textContent = `Could not import “${file.name}”: ${error.message}`;
  }
});

function showHintTools() {
  ui.hintTools.hidden = !config.accepts_hints;
  ui.hintsUnavailable.hidden = Boolean(config.accepts_hints);
}

loadConfig().then(showHintTools);
loadSamples();
