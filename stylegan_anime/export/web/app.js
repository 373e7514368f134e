// The page: seeds → z (seed_random.js, numpy-exact) → the exported generator in onnxruntime-web
// (WebAssembly) → canvases. model.json, written by `stylegan-anime export --web`, describes the model.
"use strict";
(function () {
  const GRID = 3, INTERP_FRAMES = 6;
  const $ = (id) => document.getElementById(id);
  const page = { meta: null, session: null, threads: 1, lastTiming: null };
  window.saPage = page;  // for the browser test and the curious

  function setStatus(text, isError = false) {
    $("status").textContent = text;
    $("status").classList.toggle("error", isError);
  }

  /** Show a failure in words, on the status line and in place of the pictures. */
  function showError(message) {
    setStatus(message, true);
    for (const id of ["grid", "interp"]) {
      const canvas = $(id), ctx = canvas.getContext("2d");
      ctx.fillStyle = "#f3d6d9";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.fillStyle = "#b00020";
      ctx.font = "12px sans-serif";
      ctx.fillText("No pictures: see the message above.", 6, 20, canvas.width - 12);
    }
    document.body.dataset.state = "error";
  }

  async function fetchOk(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
    return response;
  }

  function readSeed(id) {
    const seed = Number($(id).value);
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be a whole number from 0 to 4294967295, got "${$(id).value}"`);
    }
    return seed;
  }

  /** Labels c: Float32Array [n * c_dim] from the attribute checkboxes (the same row n times). */
  function labels(n) {
    const cDim = page.meta.c_dim, c = new Float32Array(n * cDim);
    const boxes = document.querySelectorAll("#attributes input");
    boxes.forEach((box, j) => { for (let i = 0; i < n; i++) c[i * cDim + j] = box.checked ? 1 : 0; });
    return c;
  }

  /** zs: Float32Array [n * z_dim] → Float32Array [n, 3, R, R] in about [-1, 1]; records the time. */
  async function generate(zs, n) {
    const { z_dim: zDim, c_dim: cDim } = page.meta;
    const feeds = {
      z: new ort.Tensor("float32", zs, [n, zDim]),
      psi: new ort.Tensor("float32", Float32Array.of(Number($("psi").value)), []),
    };
    if (cDim > 0) feeds.c = new ort.Tensor("float32", labels(n), [n, cDim]);
    const start = performance.now();
    const out = await page.session.run(feeds);
    const ms = performance.now() - start;
    page.lastTiming = { images: n, ms, msPerImage: ms / n, threads: page.threads };
    $("timing").textContent = `${n} images in ${ms.toFixed(0)} ms: ${(ms / n).toFixed(1)} ms per image ` +
      `(WebAssembly, ${page.threads} thread${page.threads > 1 ? "s" : ""})`;
    return out.images.data;
  }

  /** Image i of a [n, 3, R, R] batch drawn at (x, y); pixels as Python's to_uint8 makes them. */
  function drawImage(ctx, data, i, x, y) {
    const r = page.meta.resolution, plane = r * r, base = i * 3 * plane;
    const img = ctx.createImageData(r, r);
    for (let p = 0; p < plane; p++) {
      for (let ch = 0; ch < 3; ch++) {
        // Truncate like torch's float → uint8 cast (Uint8ClampedArray alone would round).
        const v = data[base + ch * plane + p] * 127.5 + 128;
        img.data[4 * p + ch] = Math.floor(Math.min(255, Math.max(0, v)));
      }
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, x, y);
  }

  async function drawGrid() {
    const first = readSeed("seed"), n = GRID * GRID, zDim = page.meta.z_dim, r = page.meta.resolution;
    const zs = new Float32Array(n * zDim);
    for (let i = 0; i < n; i++) {
      // Seeds past 2**32 - 1 wrap around, as a seed box that only accepts seeds can promise.
      zs.set(SeedRandom.seedToZ((first + i) % 4294967296, zDim), i * zDim);
    }
    const data = await generate(zs, n);
    const ctx = $("grid").getContext("2d");
    for (let i = 0; i < n; i++) drawImage(ctx, data, i, (i % GRID) * r, Math.floor(i / GRID) * r);
  }

  /** Spherical interpolation of two z (as sa's slerp: direction on the great circle, length linear). */
  function slerp(a, b, t) {
    const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    const na = norm(a), nb = norm(b);
    let dot = 0;
    for (let i = 0; i < a.length; i++) dot += (a[i] / na) * (b[i] / nb);
    const theta = Math.acos(Math.min(1, Math.max(-1, dot))), s = Math.sin(theta);
    const wa = s < 1e-7 ? 1 - t : Math.sin((1 - t) * theta) / s, wb = s < 1e-7 ? t : Math.sin(t * theta) / s;
    const len = na + (nb - na) * t, out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = (wa * a[i] / na + wb * b[i] / nb) * len;
    return out;
  }

  async function drawInterpolation() {
    const zDim = page.meta.z_dim, r = page.meta.resolution;
    const a = SeedRandom.seedToZ(readSeed("seed-a"), zDim), b = SeedRandom.seedToZ(readSeed("seed-b"), zDim);
    const zs = new Float32Array(INTERP_FRAMES * zDim);
    for (let i = 0; i < INTERP_FRAMES; i++) {
      const t = i / (INTERP_FRAMES - 1);
      zs.set(t === 0 ? a : t === 1 ? b : slerp(a, b, t), i * zDim);
    }
    const data = await generate(zs, INTERP_FRAMES);
    const ctx = $("interp").getContext("2d");
    for (let i = 0; i < INTERP_FRAMES; i++) drawImage(ctx, data, i, i * r, 0);
  }

  /** Run a drawing step after the ones before it (one session runs one batch at a time); a failure
   *  becomes a message and the page stays usable. */
  let queue = Promise.resolve();
  function guarded(step) {
    queue = queue.then(async () => {
      document.body.dataset.state = "busy";
      try {
        await step();
        setStatus(`Ready: ${page.meta.name}, ${page.meta.resolution}×${page.meta.resolution}.`);
        document.body.dataset.state = "done";
      } catch (e) {
        showError(e.message || String(e));
      }
    });
    return queue;
  }

  function buildControls() {
    const { resolution: r, c_dim: cDim, label_names: names } = page.meta;
    $("grid").width = $("grid").height = GRID * r;
    $("interp").width = INTERP_FRAMES * r;
    $("interp").height = r;
    if (cDim > 0) {
      const box = $("attributes");
      box.hidden = false;
      names.forEach((name, j) => {
        const label = document.createElement("label");
        label.innerHTML = `<input type="checkbox" data-index="${j}"${j === 0 ? " checked" : ""}> `;
        label.append(name);
        box.append(label);
      });
      box.addEventListener("change", () => guarded(drawGrid));
    }
    $("psi").addEventListener("input", () => { $("psi-value").textContent = Number($("psi").value).toFixed(2); });
    $("psi").addEventListener("change", () => guarded(drawGrid));
    $("seed").addEventListener("change", () => guarded(drawGrid));
    $("generate").addEventListener("click", () => guarded(drawGrid));
    $("random").addEventListener("click", () => {
      $("seed").value = Math.floor(Math.random() * 4294967287);
      guarded(drawGrid);
    });
    $("interpolate").addEventListener("click", () => guarded(drawInterpolation));
  }

  async function main() {
    if (typeof ort === "undefined") {
      showError("onnxruntime-web did not load (ort/ folder missing, or no network for its CDN copy).");
      return;
    }
    try {
      page.meta = await (await fetchOk("model.json")).json();
      // Two threads need a cross-origin isolated page (COOP/COEP headers); else one thread.
      page.threads = self.crossOriginIsolated ? Math.min(2, navigator.hardwareConcurrency || 1) : 1;
      ort.env.wasm.numThreads = page.threads;
      ort.env.wasm.wasmPaths = new URL(page.meta.ort_base, location.href).href;  // a URL, not a bare specifier
      const bytes = await (await fetchOk(page.meta.model)).arrayBuffer();
      page.session = await ort.InferenceSession.create(new Uint8Array(bytes), { executionProviders: ["wasm"] });
    } catch (e) {
      showError(`Could not load the model: ${e.message || e}`);
      return;
    }
    buildControls();
    await guarded(drawGrid);
    if (document.body.dataset.state === "done") await guarded(drawInterpolation);
  }

  page.drawGrid = () => guarded(drawGrid);
  page.drawInterpolation = () => guarded(drawInterpolation);
  page.ready = main();
})();
