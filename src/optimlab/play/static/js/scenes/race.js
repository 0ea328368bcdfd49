// The race: several optimizers on one surface (a registry surface or a typed function), from a
// start the learner clicks. Paths, losses and gradient norms come from POST /api/trajectories;
// the contours from POST /api/grid; the anatomy of one step from POST /api/anatomy.

import { ApiError, Channel, cachedGrid } from "../api.js";
import { checkbox, el, numberBox, select, slider } from "../controls.js";
import { optimizerCard, requestOf, settle } from "../optcard.js";
import { arrow, contourImage, dashFor, drawMarker, drawPath, fit, fmt, lineChart, mapFrame, onResize } from "../plot.js";
import { boolParam, decodeOptimizer, encodeOptimizer, numberList, numberParam } from "../url.js";

const TYPED = "__typed__";
const MAX_OPTIMIZERS = 8;

function defaults() {
  return {
    surface: "rosenbrock",
    expression: "x**2 + 10*y**2",
    typed: false,
    start: null, // null: the surface's default start
    steps: 300,
    noise: 0,
    seed: 0,
    k: null, // null: the end of the paths
    anatomy: false,
    focus: 0,
    optimizers: [
      { name: "SGD", preset: "keras", hyperparameters: { learning_rate: 0.001 }, schedule: null },
      { name: "Momentum", preset: "keras", hyperparameters: { learning_rate: 0.001 }, schedule: null },
      { name: "NAG", preset: "keras", hyperparameters: { learning_rate: 0.001 }, schedule: null },
      { name: "RMSprop", preset: "keras", hyperparameters: { learning_rate: 0.01 }, schedule: null },
      { name: "Adam", preset: "keras", hyperparameters: { learning_rate: 0.05 }, schedule: null },
    ],
  };
}

export function createRace(root, ctx) {
  const { catalogue, surfaces } = ctx;
  let state = defaults();
  let answer = null; // the last /api/trajectories answer painted
  let grid = null; // {key, data, image, width, height}
  let anatomy = null;
  let playing = false;
  let active = false;
  let drawing = Promise.resolve();

  const $ = (id) => root.querySelector(`#${id}`);
  const map = $("race-map");
  const lossCanvas = $("race-loss");
  const gradCanvas = $("race-gradnorm");
  const controls = $("race-controls");
  const legend = $("race-legend");
  const errorBox = $("race-error");
  const kInput = $("race-k");
  const kOut = $("race-k-out");
  const playButton = $("race-play");
  const anatomyText = $("race-anatomy-text");

  // ---- requests --------------------------------------------------------------------------
  const where = () => (state.typed ? { expression: state.expression } : { surface: state.surface });
  const body = () => {
    const b = { ...where(), steps: state.steps, gradient_noise: state.noise, seed: state.seed,
      optimizers: state.optimizers.map(requestOf) };
    if (state.start) b.start = state.start;
    return b;
  };
  // Runs are independent of each other (same start, steps, noise stream), so the page caches
  // each run the API returned under its full settings and asks only for the runs whose settings
  // changed: moving one optimizer's slider costs one run, not five. The scene's "copy code"
  // snippet comes from a request of all the runs, sent once the controls are quiet.
  const runs = new Map(); // run key -> run
  let fMin = null;
  const runKey = (entry) => JSON.stringify([where(), state.start, state.steps, state.noise,
    state.seed, requestOf(entry)]);
  const remember = (b, a) => {
    // the keys of the request's optimizers, under the request's own settings
    b.optimizers.forEach((o, i) => {
      const key = JSON.stringify([b.expression !== undefined ? { expression: b.expression } : { surface: b.surface },
        b.start || null, b.steps, b.gradient_noise, b.seed, o]);
      runs.set(key, a.runs[i]);
    });
    while (runs.size > 96) runs.delete(runs.keys().next().value);
    fMin = a.f_min;
  };
  const assemble = () => {
    const list = state.optimizers.map((o) => runs.get(runKey(o)));
    return list.every(Boolean) ? { runs: list, f_min: fMin } : null;
  };
  let codeFor = null; // the full request whose code is shown
  let codeTimer = null;
  const show = (inputs) => {
    const whole = assemble();
    if (!whole) return false;
    answer = { ...whole, code: answer && codeFor === JSON.stringify(body()) ? answer.code : null };
    errorBox.textContent = "";
    expressionError.textContent = "";
    if (kAtEnd()) state.k = null;
    if (!answer.code) scheduleCode();
    drawing = ensureGrid().then(() => {
      draw();
      ctx.painted(inputs, "race");
    }, () => ctx.painted([], "race"));
    return true;
  };
  const trajectories = new Channel("/api/trajectories", {
    onAnswer: (a, inputs, b) => {
      remember(b, a);
      if (b.optimizers.length === state.optimizers.length && JSON.stringify(b) === JSON.stringify(body())) {
        codeFor = JSON.stringify(b);
        answer = { runs: a.runs, f_min: a.f_min, code: a.code };
        ctx.setCode(a.code, "the race");
      }
      if (!show(inputs) && !trajectories.busy) request([]);
    },
    onError: (error) => showError(error),
  });
  const codeChannel = new Channel("/api/trajectories", {
    onAnswer: (a, inputs, b) => {
      remember(b, a);
      if (JSON.stringify(b) !== JSON.stringify(body())) return;
      codeFor = JSON.stringify(b);
      if (answer) answer.code = a.code;
      ctx.setCode(a.code, "the race");
    },
    onError: () => {},
  });
  function scheduleCode() {
    ctx.setCode(null, null);
    clearTimeout(codeTimer);
    codeTimer = setTimeout(() => {
      if (active) codeChannel.send(body());
    }, 350);
  }
  const anatomyChannel = new Channel("/api/anatomy", {
    onAnswer: (a) => {
      anatomy = a;
      drawMap();
      writeAnatomy();
    },
    onError: (error) => {
      anatomy = null;
      anatomyText.textContent = `anatomy: ${error.message}`;
      drawMap();
    },
  });

  function showError(error) {
    const field = error instanceof ApiError ? error.field : null;
    if (field === "expression" || (state.typed && field === null && error.status === 400)) {
      expressionError.textContent = error.message;
    } else {
      errorBox.textContent = field ? `${field}: ${error.message}` : error.message;
    }
    ctx.painted([], "race");
  }

  function request(inputs = []) {
    if (!active) return;
    ctx.changed();
    const missing = state.optimizers.filter((o) => !runs.has(runKey(o)));
    if (!missing.length) {
      trajectories.cancel();
      show(inputs);
      return;
    }
    const b = body();
    if (missing.length < state.optimizers.length) b.optimizers = missing.map(requestOf);
    trajectories.send(b, inputs);
  }

  function gridBody() {
    return { ...where(), n: 120 };
  }

  function ensureGrid() {
    const key = JSON.stringify(gridBody());
    if (grid && grid.key === key) return Promise.resolve(grid);
    return cachedGrid(gridBody()).then((data) => {
      if (JSON.stringify(gridBody()) !== key) return grid; // the surface changed meanwhile
      grid = { key, data, image: null };
      return grid;
    }, (error) => {
      showError(error);
      throw error;
    });
  }

  function domain() {
    if (grid) {
      const { x, y } = grid.data;
      return [[x[0], x[x.length - 1]], [y[0], y[y.length - 1]]];
    }
    const s = surfaces.get(state.surface);
    return s ? s.domain : [[-3, 3], [-3, 3]];
  }

  // ---- drawing ---------------------------------------------------------------------------
  const steps = () => (answer && answer.runs.length ? answer.runs[0].path.length - 1 : state.steps);
  const kAtEnd = () => state.k === null || state.k >= steps();
  const currentK = () => (kAtEnd() ? steps() : state.k);

  function mapGeometry() {
    const { ctx: c, width, height } = fit(map);
    return { c, width, height, frame: mapFrame(width, height, domain()) };
  }

  function drawMap() {
    const { c, width, height, frame } = mapGeometry();
    c.clearRect(0, 0, width, height);
    if (grid) {
      if (!grid.image || grid.width !== width || grid.height !== height) {
        grid.image = contourImage(grid.data, frame, width, height);
        grid.width = width;
        grid.height = height;
      }
      c.drawImage(grid.image, 0, 0, width, height);
      if (!state.typed) {
        const s = surfaces.get(state.surface);
        for (const m of (s && s.minima) || []) drawMarker(c, frame, m.point, "min");
      }
    }
    if (!answer) return;
    const k = currentK();
    const seen = new Map();
    answer.runs.forEach((run) => {
      const n = seen.get(run.name) || 0;
      seen.set(run.name, n + 1);
      drawPath(c, frame, run.path, k, run.color, { dash: dashFor(n) });
    });
    const start = answer.runs.length ? answer.runs[0].path[0] : state.start;
    if (start) drawMarker(c, frame, start, "start");
    if (state.anatomy && anatomy) drawAnatomy(c, frame);
  }

  function drawAnatomy(c, frame) {
    const a = anatomy;
    if (!a.point) return;
    const px = frame.px(a.point[0]);
    const py = frame.py(a.point[1]);
    const scale = Math.min(frame.box.width, frame.box.height) * 0.16;
    const unit = (v) => {
      // a direction in pixels (y grows down on the canvas)
      const vx = v[0] * (frame.box.width / (frame.x1 - frame.x0));
      const vy = -v[1] * (frame.box.height / (frame.y1 - frame.y0));
      const n = Math.hypot(vx, vy);
      return n > 0 ? [vx / n, vy / n] : null;
    };
    if (a.next_point) {
      arrow(c, px, py, frame.px(a.next_point[0]), frame.py(a.next_point[1]), "#111", "", 2);
    }
    if (a.gradient) {
      const d = unit(a.gradient.map((g) => -g));
      if (d) arrow(c, px, py, px + d[0] * scale, py + d[1] * scale, "#c0392b", "−∇f");
    }
    if (a.velocity) {
      let v = a.velocity;
      // show the buffer along the way it moves the point (Keras stores -lr*v, torch +v)
      if (a.next_point) {
        const step = [a.next_point[0] - a.point[0], a.next_point[1] - a.point[1]];
        if (step[0] * v[0] + step[1] * v[1] < 0) v = v.map((x) => -x);
      }
      const d = unit(v);
      if (d) arrow(c, px, py, px + d[0] * scale * 0.8, py + d[1] * scale * 0.8, "#1f6fb2", "v");
    }
    if (a.lookahead) {
      const lx = frame.px(a.lookahead[0]);
      const ly = frame.py(a.lookahead[1]);
      c.save();
      c.setLineDash([3, 3]);
      c.strokeStyle = "#56B4E9";
      c.lineWidth = 1.5;
      c.beginPath();
      c.moveTo(px, py);
      c.lineTo(lx, ly);
      c.stroke();
      c.setLineDash([]);
      c.fillStyle = "#fff";
      c.beginPath();
      c.arc(lx, ly, 5, 0, 2 * Math.PI);
      c.fill();
      c.stroke();
      c.restore();
    }
  }

  function writeAnatomy() {
    if (!state.anatomy) {
      anatomyText.replaceChildren();
      return;
    }
    if (!anatomy) {
      anatomyText.textContent = "anatomy: asking the engine…";
      return;
    }
    const a = anatomy;
    const v2 = (v) => (v ? `(${fmt(v[0])}, ${fmt(v[1])})` : "—");
    const entry = state.optimizers[state.focus] || state.optimizers[0];
    const lines = [
      el("strong", { text: `${entry ? entry.name : ""}, step ${a.step} → ${a.step + 1}` }),
      el("span", { class: "k-point", text: `p = ${v2(a.point)}` }),
      el("span", { class: "k-grad", text: `gradient g = ${v2(a.gradient)}` }),
      el("span", { class: "k-next", text: `next p = ${v2(a.next_point)}` }),
    ];
    if (a.velocity) lines.push(el("span", { class: "k-vel", text: `velocity v = ${v2(a.velocity)}` }));
    if (a.lookahead) lines.push(el("span", { class: "k-look", text: `look-ahead = ${v2(a.lookahead)}` }));
    if (a.effective_lr) {
      lines.push(el("span", { class: "k-lr", text: `effective learning rate (x, y) = ${v2(a.effective_lr)}` }));
    }
    for (const [slot, value] of Object.entries(a.state || {})) {
      if (slot === "velocity" || slot === "momentum") continue;
      lines.push(el("span", { class: "k-slot", text: `${slot} = ${Array.isArray(value) ? v2(value) : fmt(value)}` }));
    }
    anatomyText.replaceChildren(...lines);
  }

  function drawCurves() {
    if (!answer) return;
    const k = currentK();
    const fMin = Number.isFinite(answer.f_min) ? answer.f_min : null;
    const seen = new Map();
    const loss = [];
    const grads = [];
    answer.runs.forEach((run) => {
      const n = seen.get(run.name) || 0;
      seen.set(run.name, n + 1);
      const x = run.loss.map((_, i) => i);
      const gap = run.loss.map((v) => (v === null ? null : fMin === null ? v : Math.max(v - fMin, 1e-300)));
      loss.push({ x, y: gap, colour: run.color, dash: dashFor(n) });
      grads.push({ x, y: run.grad_norm, colour: run.color, dash: dashFor(n) });
    });
    lossFrame = lineChart(lossCanvas, loss, { logY: fMin !== null, xLabel: "step",
      yLabel: fMin === null ? "f" : "f − f_min", marker: k });
    gradFrame = lineChart(gradCanvas, grads, { logY: true, xLabel: "step", yLabel: "|∇f|", marker: k });
  }
  let lossFrame = null;
  let gradFrame = null;

  function writeLegend() {
    if (!answer) return;
    const k = currentK();
    const seen = new Map();
    legend.replaceChildren(...answer.runs.map((run, i) => {
      const n = seen.get(run.name) || 0;
      seen.set(run.name, n + 1);
      const at = Math.min(k, run.loss.length - 1);
      const dash = dashFor(n).length ? "dashed" : "solid";
      const status = run.diverged_at !== null && run.diverged_at !== undefined
        ? el("span", { class: "diverged", text: ` diverged at step ${run.diverged_at}` }) : null;
      return el("li", {}, [
        el("span", { class: `swatch ${dash}`, style: `--c:${run.color}` }),
        el("span", { class: "run-label", text: run.label || run.name }),
        el("span", { class: "run-value", text: ` f = ${fmt(run.loss[at])}, |∇f| = ${fmt(run.grad_norm[at])}` }),
        status,
        i === state.focus && state.anatomy ? el("span", { class: "focus-mark", text: " (anatomy)" }) : null,
      ]);
    }));
  }

  function writePlaybar() {
    const total = steps();
    kInput.max = String(total);
    kInput.value = String(currentK());
    kOut.textContent = `${currentK()} / ${total}`;
    playButton.textContent = playing ? "❚❚ pause" : "▶ play";
    playButton.setAttribute("aria-pressed", playing ? "true" : "false");
  }

  function draw() {
    drawMap();
    drawCurves();
    writeLegend();
    writePlaybar();
    writeAnatomy();
    writeStart();
  }

  // ---- anatomy ---------------------------------------------------------------------------
  function askAnatomy() {
    if (!state.anatomy || !active) return;
    const entry = state.optimizers[state.focus];
    if (!entry) return;
    const total = steps();
    const b = body();
    delete b.optimizers;
    b.optimizer = requestOf(entry);
    b.step = Math.max(0, Math.min(currentK(), total - 1));
    anatomyChannel.send(b);
  }

  // ---- playback --------------------------------------------------------------------------
  function setK(k, { ask = true } = {}) {
    const total = steps();
    state.k = k >= total ? null : Math.max(0, Math.round(k));
    drawMap();
    drawCurves();
    writeLegend();
    writePlaybar();
    if (ask) askAnatomy();
    ctx.changed();
  }

  function tick() {
    if (!playing) return;
    const total = steps();
    const speed = Math.max(1, Math.round(total / 240));
    const k = currentK() + speed;
    setK(k);
    if (k >= total) {
      playing = false;
      writePlaybar();
      return;
    }
    requestAnimationFrame(tick);
  }

  playButton.addEventListener("click", () => {
    if (playing) {
      playing = false;
      writePlaybar();
      return;
    }
    if (kAtEnd()) state.k = 0;
    playing = true;
    writePlaybar();
    requestAnimationFrame(tick);
  });
  $("race-step").addEventListener("click", () => {
    playing = false;
    setK(kAtEnd() ? 0 : currentK() + 1);
  });
  $("race-back").addEventListener("click", () => {
    playing = false;
    setK(Math.max(0, currentK() - 1));
  });
  $("race-rewind").addEventListener("click", () => {
    playing = false;
    setK(0);
  });
  kInput.addEventListener("input", () => {
    playing = false;
    setK(Number(kInput.value));
  });
  for (const [canvas, frame] of [[lossCanvas, () => lossFrame], [gradCanvas, () => gradFrame]]) {
    canvas.addEventListener("pointerdown", (event) => {
      const f = frame();
      if (!f) return;
      const r = canvas.getBoundingClientRect();
      playing = false;
      setK(Math.round(f.dx(event.clientX - r.left)));
    });
  }

  const anatomyBox = checkbox({
    label: "anatomy of one step",
    value: state.anatomy,
    onChange: (v) => {
      state.anatomy = v;
      anatomy = null;
      focusSelect.input.disabled = !v;
      draw();
      askAnatomy();
      ctx.changed();
    },
  });
  const focusSelect = select({
    label: "of",
    options: [],
    value: "0",
    onChange: (v) => {
      state.focus = Number(v);
      anatomy = null;
      draw();
      askAnatomy();
      ctx.changed();
    },
  });
  $("race-anatomy").append(anatomyBox.node, focusSelect.node);

  // ---- the map: click sets the start -----------------------------------------------------
  map.addEventListener("click", (event) => {
    const { frame } = mapGeometry();
    const r = map.getBoundingClientRect();
    const x = event.clientX - r.left;
    const y = event.clientY - r.top;
    if (!frame.inside(x, y)) return;
    const [[x0, x1], [y0, y1]] = domain();
    const digits = (span) => Math.max(0, 3 - Math.floor(Math.log10(span)));
    const round = (v, span) => Number(v.toFixed(digits(span)));
    state.start = [round(frame.dx(x), x1 - x0), round(frame.dy(y), y1 - y0)];
    state.k = null;
    playing = false;
    request([ctx.stamp(event)]);
  });

  // ---- controls --------------------------------------------------------------------------
  const surfaceOptions = () => [...[...surfaces.values()].map((s) => [s.name, s.title || s.name]),
    [TYPED, "a function I type…"]];
  let expressionInput;
  let expressionError;
  let startOut;
  let stepsSlider;
  let noiseSlider;
  let seedBox;
  let surfaceSelect;
  let cards;

  function buildControls() {
    controls.replaceChildren();
    const world = el("fieldset", { class: "card" }, [el("legend", { text: "surface and start" })]);
    surfaceSelect = select({
      label: "surface",
      options: surfaceOptions(),
      value: state.typed ? TYPED : state.surface,
      onChange: (v, event) => {
        state.typed = v === TYPED;
        if (!state.typed) state.surface = v;
        state.start = null;
        state.k = null;
        expressionError.textContent = "";
        exprRow.hidden = !state.typed;
        describe();
        request([ctx.stamp(event)]);
      },
    });
    world.append(surfaceSelect.node);
    const exprId = "race-expression";
    expressionInput = el("input", { id: exprId, type: "text", spellcheck: "false", autocomplete: "off",
      maxlength: 300, placeholder: "x**2 + 10*y**2", "aria-describedby": "race-expression-error" });
    expressionInput.value = state.expression;
    expressionError = el("p", { id: "race-expression-error", class: "error", role: "alert", "aria-live": "polite" });
    const apply = (event) => {
      state.expression = expressionInput.value.trim();
      state.start = null;
      state.k = null;
      expressionError.textContent = "";
      request([ctx.stamp(event)]);
    };
    expressionInput.addEventListener("keydown", (event) => {
      if (event.key === "Enter") apply(event);
    });
    const exprRow = el("div", { class: "control expression" }, [
      el("label", { for: exprId, text: "f(x, y) =" }),
      el("div", { class: "row" }, [expressionInput,
        el("button", { type: "button", id: "race-expression-apply", text: "draw", onclick: apply })]),
      el("p", { class: "hint", text: "x, y, numbers, + − * / ** (or ^), pi, e, sin cos tan exp log sqrt abs tanh …" }),
      expressionError,
    ]);
    exprRow.hidden = !state.typed;
    world.append(exprRow);
    const description = el("p", { class: "hint surface-description" });
    const describe = () => {
      const s = surfaces.get(state.surface);
      description.textContent = state.typed ? "your function: its exact gradient is derived symbolically"
        : s ? `${s.formula ? s.formula + " — " : ""}${s.description || ""}` : "";
    };
    describe();
    world.append(description);
    startOut = el("output", { id: "race-start" });
    world.append(el("div", { class: "control" }, [
      el("span", { class: "label", text: "start " }), startOut,
      el("button", { type: "button", class: "small", text: "default start",
        onclick: (event) => { state.start = null; request([ctx.stamp(event)]); } }),
    ]));
    world.append(el("p", { class: "hint", text: "click the map to start from there" }));
    controls.append(world);

    const run = el("fieldset", { class: "card" }, [el("legend", { text: "run" })]);
    stepsSlider = slider({ label: "steps", low: 10, high: 2000, value: state.steps, log: true, kind: "int",
      onInput: (v, event) => { state.steps = v; state.k = null; request([ctx.stamp(event)]); } });
    noiseSlider = slider({ label: "gradient noise σ", low: 0, high: 5, value: state.noise, step: 0.01,
      onInput: (v, event) => { state.noise = v; request([ctx.stamp(event)]); } });
    seedBox = numberBox({ label: "noise seed", value: state.seed, low: 0, step: 1,
      onChange: (v, event) => { state.seed = Math.max(0, Math.round(v)); request([ctx.stamp(event)]); } });
    run.append(stepsSlider.node, noiseSlider.node, seedBox.node);
    controls.append(run);

    cards = el("div", { class: "cards" });
    controls.append(cards);
    const add = el("button", { type: "button", id: "race-add", text: "+ add an optimizer",
      onclick: (event) => {
        if (state.optimizers.length >= MAX_OPTIMIZERS) return;
        const used = new Set(state.optimizers.map((o) => o.name));
        const name = [...catalogue.optimizers.keys()].find((n) => !used.has(n)) || "Adam";
        state.optimizers.push(settle({ name, preset: "keras", hyperparameters: {}, schedule: null }, catalogue));
        buildCards();
        request([ctx.stamp(event)]);
      } });
    controls.append(add);
    buildCards();
  }

  function buildCards() {
    cards.replaceChildren(...state.optimizers.map((entry, index) => optimizerCard(entry, catalogue, {
      index,
      removable: state.optimizers.length > 1,
      onInput: (event) => request([ctx.stamp(event)]),
      onChange: (event) => {
        buildCards();
        request([ctx.stamp(event)]);
        if (index === state.focus) askAnatomy();
      },
      onRemove: (event) => {
        state.optimizers.splice(index, 1);
        state.focus = Math.min(state.focus, state.optimizers.length - 1);
        buildCards();
        request([ctx.stamp(event)]);
      },
    }).node));
    $("race-add").disabled = state.optimizers.length >= MAX_OPTIMIZERS;
    focusSelect.fill(state.optimizers.map((o, i) => [String(i), `${i + 1}: ${o.name}`]));
    focusSelect.set(String(state.focus));
    focusSelect.input.disabled = !state.anatomy;
  }

  function writeStart() {
    const start = answer && answer.runs.length ? answer.runs[0].path[0] : state.start;
    startOut.textContent = start ? `(${fmt(start[0])}, ${fmt(start[1])})` : "default";
  }

  onResize([map, lossCanvas, gradCanvas], () => {
    if (!active) return;
    if (grid) grid.image = null;
    draw();
  });

  // ---- the scene's interface -------------------------------------------------------------
  return {
    name: "race",
    load(params) {
      const s = defaults();
      if (params.has("f")) {
        s.typed = true;
        s.expression = params.get("f");
      } else if (params.has("surface") && surfaces.has(params.get("surface"))) {
        s.surface = params.get("surface");
      }
      s.start = numberList(params.get("start"), 2);
      s.steps = numberParam(params, "steps", s.steps, { low: 1, high: 5000, int: true });
      s.noise = numberParam(params, "noise", s.noise, { low: 0 });
      s.seed = numberParam(params, "seed", s.seed, { low: 0, int: true });
      const k = numberParam(params, "step", null, { low: 0, int: true });
      s.k = k === null || k >= s.steps ? null : k;
      s.anatomy = boolParam(params, "anatomy", false);
      const opts = params.getAll("opt").map(decodeOptimizer).filter((o) => catalogue.optimizers.has(o.name));
      if (opts.length) s.optimizers = opts.slice(0, MAX_OPTIMIZERS);
      s.optimizers.forEach((o) => settle(o, catalogue));
      s.focus = numberParam(params, "focus", 0, { low: 0, high: s.optimizers.length - 1, int: true });
      state = s;
      answer = null;
      anatomy = null;
      grid = null;
      playing = false;
      buildControls();
      anatomyBox.set(state.anatomy);
    },
    params() {
      const pairs = [];
      if (state.typed) pairs.push(["f", state.expression]);
      else pairs.push(["surface", state.surface]);
      if (state.start) pairs.push(["start", state.start.join(",")]);
      pairs.push(["steps", state.steps]);
      if (state.noise) pairs.push(["noise", state.noise], ["seed", state.seed]);
      else if (state.seed) pairs.push(["seed", state.seed]);
      for (const o of state.optimizers) pairs.push(["opt", encodeOptimizer(o)]);
      if (state.k !== null) pairs.push(["step", state.k]);
      if (state.anatomy) pairs.push(["anatomy", 1], ["focus", state.focus]);
      return pairs;
    },
    activate() {
      active = true;
      request([]);
      askAnatomy();
    },
    deactivate() {
      active = false;
      playing = false;
      trajectories.cancel();
      anatomyChannel.cancel();
      codeChannel.cancel();
      clearTimeout(codeTimer);
    },
    lastRuns: () => (answer ? answer.runs : null),
    answer: () => answer,
    anatomy: () => anatomy,
    state: () => state,
    idle: async () => {
      await Promise.all([trajectories.idle(), anatomyChannel.idle(), codeChannel.idle()]);
      await drawing;
    },
  };
}
