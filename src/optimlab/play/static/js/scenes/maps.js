// Maps on demand (POST /api/sweep): the basins of attraction of one optimizer over a grid of
// starts (click a cell: its path from POST /api/trajectories), and the final loss of heavy-ball
// momentum over (learning rate, beta) with the theory's convergence region outlined.

import { Channel, cachedGrid } from "../api.js";
import { el, select, slider } from "../controls.js";
import { optimizerCard, requestOf, settle } from "../optcard.js";
import { Frame, colourAt, drawMarker, drawPath, fit, fmt, mapFrame, marchingSquares, onResize } from "../plot.js";
import { decodeOptimizer, encodeOptimizer, numberParam } from "../url.js";

// one colour per minimum (Okabe-Ito, lightened for cells); -1: no minimum, -2: diverged
const BASIN = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#999933",
  "#44AA99", "#882255"];
const NONE = "#d9d9de";
const DIVERGED = "#3b3b46";
const GRIDS = [16, 32, 48, 64, 96, 128];

function defaults() {
  return {
    surface: "himmelblau",
    optimizer: { name: "Momentum", preset: "keras", hyperparameters: { learning_rate: 0.005 }, schedule: null },
    steps: 200,
    grid: 64,
    cell: null, // [i, j] of the clicked cell
    lbSurface: "ravine",
    lbOptimizer: "Momentum",
    lrLow: 1e-3,
    lrHigh: 1,
    betaLow: 0,
    betaHigh: 0.99,
    count: 40,
    lbSteps: 200,
  };
}

function hexToRgb(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export function createMaps(root, ctx) {
  const { catalogue, surfaces } = ctx;
  let state = defaults();
  let basins = null;
  let contour = null;
  let cellRun = null;
  let lrBeta = null;
  let active = false;
  let drawing = Promise.resolve();
  let basinFrame = null;
  let lbFrame = null;
  const $ = (id) => root.querySelector(`#${id}`);
  const basinCanvas = $("maps-basins");
  const lbCanvas = $("maps-lrbeta");
  const basinInfo = $("maps-basins-info");
  const lbInfo = $("maps-lrbeta-info");
  const basinLegend = $("maps-basins-legend");
  const errorBox = $("maps-error");
  const controls = $("maps-controls");

  const fail = (error) => {
    errorBox.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  };
  const basinChannel = new Channel("/api/sweep", {
    abortStale: true,
    onAnswer: (a, inputs) => {
      basins = a;
      errorBox.textContent = "";
      if (!state.cell) cellRun = null;
      drawing = cachedGrid({ surface: state.surface, n: 100 }).then((g) => { contour = g; }, () => { contour = null; })
        .finally(() => {
          drawBasins();
          ctx.painted(inputs, "maps", "map");
        });
      if (state.cell) askCell();
    },
    onError: (error) => {
      fail(error);
      ctx.painted([], "maps", "map");
    },
  });
  const cellChannel = new Channel("/api/trajectories", {
    onAnswer: (a, inputs) => {
      cellRun = a.runs[0];
      ctx.setCode(a.code, "the clicked start's path");
      drawBasins();
      ctx.painted(inputs, "maps");
    },
    onError: fail,
  });
  const lbChannel = new Channel("/api/sweep", {
    abortStale: true,
    onAnswer: (a, inputs) => {
      lrBeta = a;
      errorBox.textContent = "";
      drawLrBeta();
      ctx.painted(inputs, "maps", "map");
    },
    onError: (error) => {
      fail(error);
      ctx.painted([], "maps", "map");
    },
  });

  const basinBody = () => ({ kind: "basins", surface: state.surface, optimizer: requestOf(state.optimizer),
    grid: state.grid, steps: state.steps });
  const lbBody = () => ({ kind: "lr_beta", surface: state.lbSurface,
    optimizer: { name: state.lbOptimizer, preset: "keras", hyperparameters: {} },
    learning_rates: { low: state.lrLow, high: state.lrHigh, count: state.count },
    betas: { low: state.betaLow, high: state.betaHigh, count: state.count }, steps: state.lbSteps });
  const askBasins = (inputs = []) => {
    if (!active) return;
    basinChannel.send(basinBody(), inputs);
    ctx.changed();
  };
  const askLrBeta = (inputs = []) => {
    if (!active) return;
    lbChannel.send(lbBody(), inputs);
    ctx.changed();
  };
  function askCell(inputs = []) {
    if (!basins || !state.cell) return;
    const [i, j] = state.cell;
    const start = [basins.x[j], basins.y[i]];
    cellChannel.send({ surface: state.surface, start, steps: state.steps,
      optimizers: [requestOf(state.optimizer)] }, inputs);
  }

  // ---- the basin map ---------------------------------------------------------------------
  function drawBasins() {
    const { ctx: c, width, height } = fit(basinCanvas);
    c.clearRect(0, 0, width, height);
    if (!basins) return;
    const { x, y, basin } = basins;
    const dx = x.length > 1 ? x[1] - x[0] : 1;
    const dy = y.length > 1 ? y[1] - y[0] : 1;
    const domain = [[x[0] - dx / 2, x[x.length - 1] + dx / 2], [y[0] - dy / 2, y[y.length - 1] + dy / 2]];
    const frame = mapFrame(width, height, domain);
    basinFrame = frame;
    const cells = document.createElement("canvas");
    cells.width = x.length;
    cells.height = y.length;
    const cc = cells.getContext("2d");
    const image = cc.createImageData(x.length, y.length);
    const counts = new Map();
    for (let i = 0; i < y.length; i++) {
      for (let j = 0; j < x.length; j++) {
        const b = basin[i][j];
        counts.set(b, (counts.get(b) || 0) + 1);
        const rgb = hexToRgb(b >= 0 ? BASIN[b % BASIN.length] : b === -2 ? DIVERGED : NONE);
        const light = b >= 0 ? rgb.map((v) => Math.round(v + (255 - v) * 0.35)) : rgb;
        image.data.set([...light, 255], ((y.length - 1 - i) * x.length + j) * 4);
      }
    }
    cc.putImageData(image, 0, 0);
    c.imageSmoothingEnabled = false;
    c.drawImage(cells, frame.px(domain[0][0]), frame.py(domain[1][1]),
      frame.px(domain[0][1]) - frame.px(domain[0][0]), frame.py(domain[1][0]) - frame.py(domain[1][1]));
    if (contour) {
      c.save();
      c.strokeStyle = "rgba(20,20,40,0.22)";
      c.lineWidth = 0.8;
      const X = contour.x.map((v) => frame.px(v));
      const Y = contour.y.map((v) => frame.py(v));
      const values = contour.z.flat().filter((v) => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
      for (let k = 1; k <= 10; k++) {
        c.beginPath();
        marchingSquares(contour.z, X, Y, values[Math.floor(((k / 11) ** 2) * (values.length - 1))], c);
        c.stroke();
      }
      c.restore();
    }
    const minima = basins.minima || [];
    minima.forEach((m, k) => drawMarker(c, frame, m.point || m, "min", BASIN[k % BASIN.length]));
    if (cellRun) {
      drawPath(c, frame, cellRun.path, cellRun.path.length, "#fff", { width: 4.5, dot: false });
      drawPath(c, frame, cellRun.path, cellRun.path.length, "#111", { width: 2 });
      drawMarker(c, frame, cellRun.path[0], "start");
    }
    c.strokeStyle = "#889";
    c.strokeRect(frame.box.left, frame.box.top, frame.box.width, frame.box.height);
    const total = x.length * y.length;
    const share = (b) => `${Math.round((100 * (counts.get(b) || 0)) / total)}%`;
    basinLegend.replaceChildren(
      ...minima.map((m, k) => {
        const p = m.point || m;
        return el("li", {}, [el("span", { class: "swatch block", style: `--c:${BASIN[k % BASIN.length]}` }),
          `minimum ${k + 1} at (${fmt(p[0])}, ${fmt(p[1])}): ${share(k)}`]);
      }),
      el("li", {}, [el("span", { class: "swatch block", style: `--c:${NONE}` }), `no minimum within reach: ${share(-1)}`]),
      el("li", {}, [el("span", { class: "swatch block", style: `--c:${DIVERGED}` }), `diverged: ${share(-2)}`]),
    );
    if (cellRun && state.cell) {
      const [i, j] = state.cell;
      const b = basin[i][j];
      const where = b >= 0 ? `reaches minimum ${b + 1}` : b === -2 ? "diverges" : "reaches no minimum";
      basinInfo.textContent = `start (${fmt(x[j])}, ${fmt(y[i])}) ${where}; final loss ${fmt(basins.final_loss[i][j])}`;
    } else {
      basinInfo.textContent = "click a cell to see the path from that start";
    }
  }

  basinCanvas.addEventListener("click", (event) => {
    if (!basins || !basinFrame) return;
    const r = basinCanvas.getBoundingClientRect();
    const px = event.clientX - r.left;
    const py = event.clientY - r.top;
    if (!basinFrame.inside(px, py)) return;
    const { x, y } = basins;
    const nearest = (values, v) => values.reduce((best, w, k) => (Math.abs(w - v) < Math.abs(values[best] - v) ? k : best), 0);
    state.cell = [nearest(y, basinFrame.dy(py)), nearest(x, basinFrame.dx(px))];
    askCell([ctx.stamp(event)]);
    ctx.changed();
  });

  // ---- the (learning rate, beta) map -----------------------------------------------------
  function drawLrBeta() {
    const { ctx: c, width, height } = fit(lbCanvas);
    c.clearRect(0, 0, width, height);
    if (!lrBeta) return;
    const lrs = lrBeta.learning_rates;
    const betas = lrBeta.betas;
    const loss = lrBeta.final_loss;
    const box = { left: 50, top: 8, width: width - 60, height: height - 44 };
    const l0 = Math.log10(lrs[0]);
    const l1 = Math.log10(lrs[lrs.length - 1]);
    const hl = lrs.length > 1 ? (l1 - l0) / (lrs.length - 1) / 2 : 0.5;
    const hb = betas.length > 1 ? (betas[betas.length - 1] - betas[0]) / (betas.length - 1) / 2 : 0.5;
    const frame = new Frame(box, l0 - hl, l1 + hl, betas[0] - hb, betas[betas.length - 1] + hb);
    lbFrame = frame;
    const logs = [];
    loss.forEach((row, b) => row.forEach((v, l) => {
      const diverged = lrBeta.diverged ? lrBeta.diverged[b][l] : false;
      if (!diverged && v !== null && Number.isFinite(v) && v > 0) logs.push(Math.log10(v));
    }));
    const lo = Math.min(...logs);
    const hi = Math.max(...logs);
    const cells = document.createElement("canvas");
    cells.width = lrs.length;
    cells.height = betas.length;
    const cc = cells.getContext("2d");
    const image = cc.createImageData(lrs.length, betas.length);
    for (let b = 0; b < betas.length; b++) {
      for (let l = 0; l < lrs.length; l++) {
        const v = loss[b][l];
        const diverged = lrBeta.diverged ? lrBeta.diverged[b][l] : false;
        let rgb;
        if (diverged || v === null || !Number.isFinite(v)) rgb = [120, 30, 30];
        else if (v <= 0) rgb = colourAt(1);
        else rgb = colourAt(hi > lo ? 1 - (Math.log10(v) - lo) / (hi - lo) : 0.5);
        image.data.set([...rgb, 255], ((betas.length - 1 - b) * lrs.length + l) * 4);
      }
    }
    cc.putImageData(image, 0, 0);
    c.imageSmoothingEnabled = false;
    c.drawImage(cells, box.left, box.top, box.width, box.height);
    // the theory's convergence region: the edges between converging and other cells
    const theory = lrBeta.theory;
    if (theory && theory.converges) {
      const conv = theory.converges;
      const cw = box.width / lrs.length;
      const ch = box.height / betas.length;
      c.save();
      c.strokeStyle = "#ffcc00";
      c.lineWidth = 2.5;
      c.beginPath();
      for (let b = 0; b < betas.length; b++) {
        for (let l = 0; l < lrs.length; l++) {
          if (!conv[b][l]) continue;
          const x0 = box.left + l * cw;
          const y0 = box.top + (betas.length - 1 - b) * ch;
          const edge = (bb, ll) => bb < 0 || ll < 0 || bb >= betas.length || ll >= lrs.length || !conv[bb][ll];
          if (edge(b, l - 1)) { c.moveTo(x0, y0); c.lineTo(x0, y0 + ch); }
          if (edge(b, l + 1)) { c.moveTo(x0 + cw, y0); c.lineTo(x0 + cw, y0 + ch); }
          if (edge(b + 1, l)) { c.moveTo(x0, y0); c.lineTo(x0 + cw, y0); }
          if (edge(b - 1, l)) { c.moveTo(x0, y0 + ch); c.lineTo(x0 + cw, y0 + ch); }
        }
      }
      c.stroke();
      c.restore();
    }
    // axes
    c.fillStyle = "#556";
    c.font = "12px system-ui, sans-serif";
    c.textAlign = "center";
    for (let e = Math.ceil(l0); e <= Math.floor(l1); e++) {
      c.fillText(`1e${e}`, frame.px(e), box.top + box.height + 14);
    }
    c.fillText("learning rate (log)", box.left + box.width / 2, height - 4);
    c.textAlign = "right";
    for (const t of [0, 0.25, 0.5, 0.75, 0.9, 0.99]) {
      if (t < betas[0] || t > betas[betas.length - 1]) continue;
      c.fillText(String(t), box.left - 4, frame.py(t) + 4);
    }
    c.save();
    c.translate(11, box.top + box.height / 2);
    c.rotate(-Math.PI / 2);
    c.textAlign = "center";
    c.fillText("β (momentum)", 0, 0);
    c.restore();
    c.strokeStyle = "#889";
    c.strokeRect(box.left, box.top, box.width, box.height);
    if (theory) {
      const ev = (theory.eigenvalues || []).map((v) => fmt(v)).join(", ");
      lbInfo.textContent = `theory (${theory.where}): Hessian eigenvalues ${ev}; inside the yellow outline the heavy-ball iteration contracts (spectral radius < 1). Dark red: diverged.`;
    } else {
      lbInfo.textContent = "no theory for this surface (no minimum to linearize at). Dark red: diverged.";
    }
  }

  lbCanvas.addEventListener("click", (event) => {
    if (!lrBeta || !lbFrame) return;
    const r = lbCanvas.getBoundingClientRect();
    const px = event.clientX - r.left;
    const py = event.clientY - r.top;
    if (!lbFrame.inside(px, py)) return;
    const lrs = lrBeta.learning_rates;
    const betas = lrBeta.betas;
    const l = Math.min(lrs.length - 1, Math.max(0, Math.floor(((px - lbFrame.box.left) / lbFrame.box.width) * lrs.length)));
    const b = Math.min(betas.length - 1, Math.max(0, Math.floor((1 - (py - lbFrame.box.top) / lbFrame.box.height) * betas.length)));
    const theory = lrBeta.theory && lrBeta.theory.converges ? (lrBeta.theory.converges[b][l] ? "converges" : "does not converge") : "—";
    const run = lrBeta.diverged && lrBeta.diverged[b][l] ? "diverged" : `final loss ${fmt(lrBeta.final_loss[b][l])}`;
    lbInfo.textContent = `learning rate ${fmt(lrs[l])}, β ${fmt(betas[b])}: ${run}; theory: ${theory}`;
  });

  // ---- controls --------------------------------------------------------------------------
  function buildControls() {
    const names = [...surfaces.values()].map((s) => [s.name, s.title || s.name]);
    const basinCard = el("fieldset", { class: "card" }, [el("legend", { text: "basins of attraction" })]);
    basinCard.append(select({ label: "surface", options: names, value: state.surface,
      onChange: (v, event) => { state.surface = v; state.cell = null; cellRun = null; askBasins([ctx.stamp(event)]); } }).node);
    basinCard.append(slider({ label: "steps", low: 10, high: 1000, value: state.steps, log: true, kind: "int",
      onInput: (v, event) => { state.steps = v; askBasins([ctx.stamp(event)]); } }).node);
    basinCard.append(select({ label: "grid (starts per side)", options: GRIDS.map((g) => [String(g), `${g} × ${g}`]),
      value: String(state.grid),
      onChange: (v, event) => { state.grid = Number(v); state.cell = null; cellRun = null; askBasins([ctx.stamp(event)]); } }).node);
    const card = optimizerCard(state.optimizer, catalogue, {
      index: 0, removable: false, title: "the optimizer",
      onInput: (event) => askBasins([ctx.stamp(event)]),
      onChange: (event) => askBasins([ctx.stamp(event)]),
      onRemove: () => {},
    });
    basinCard.append(card.node);

    const lbCard = el("fieldset", { class: "card" }, [el("legend", { text: "(learning rate, β) map" })]);
    lbCard.append(select({ label: "surface", options: names, value: state.lbSurface,
      onChange: (v, event) => { state.lbSurface = v; askLrBeta([ctx.stamp(event)]); } }).node);
    const lbNames = ["SGD", "Momentum", "NAG"].filter((n) => catalogue.optimizers.has(n));
    lbCard.append(select({ label: "optimizer (β is its momentum)", options: lbNames.map((n) => [n, n]), value: state.lbOptimizer,
      onChange: (v, event) => { state.lbOptimizer = v; askLrBeta([ctx.stamp(event)]); } }).node);
    lbCard.append(slider({ label: "lowest learning rate", low: 1e-5, high: 1, value: state.lrLow, log: true,
      onInput: (v, event) => { state.lrLow = Math.min(v, state.lrHigh / 1.01); askLrBeta([ctx.stamp(event)]); } }).node);
    lbCard.append(slider({ label: "highest learning rate", low: 1e-4, high: 10, value: state.lrHigh, log: true,
      onInput: (v, event) => { state.lrHigh = Math.max(v, state.lrLow * 1.01); askLrBeta([ctx.stamp(event)]); } }).node);
    lbCard.append(slider({ label: "cells per side", low: 8, high: 64, value: state.count, kind: "int",
      onInput: (v, event) => { state.count = v; askLrBeta([ctx.stamp(event)]); } }).node);
    lbCard.append(slider({ label: "steps", low: 10, high: 1000, value: state.lbSteps, log: true, kind: "int",
      onInput: (v, event) => { state.lbSteps = v; askLrBeta([ctx.stamp(event)]); } }).node);
    controls.replaceChildren(basinCard, lbCard);
  }

  onResize([basinCanvas, lbCanvas], () => {
    if (!active) return;
    drawBasins();
    drawLrBeta();
  });

  return {
    name: "maps",
    load(params) {
      const s = defaults();
      if (surfaces.has(params.get("surface"))) s.surface = params.get("surface");
      if (params.has("opt")) {
        const o = decodeOptimizer(params.get("opt"));
        if (catalogue.optimizers.has(o.name)) s.optimizer = o;
      }
      settle(s.optimizer, catalogue);
      s.steps = numberParam(params, "steps", s.steps, { low: 1, high: 5000, int: true });
      s.grid = numberParam(params, "grid", s.grid, { low: 8, high: 128, int: true });
      const cell = (params.get("cell") || "").split(",").map(Number);
      s.cell = cell.length === 2 && cell.every(Number.isInteger) && cell.every((v) => v >= 0 && v < s.grid) ? cell : null;
      if (surfaces.has(params.get("lb_surface"))) s.lbSurface = params.get("lb_surface");
      if (["SGD", "Momentum", "NAG"].includes(params.get("lb_opt"))) s.lbOptimizer = params.get("lb_opt");
      s.lrLow = numberParam(params, "lr_low", s.lrLow, { low: 0 });
      s.lrHigh = numberParam(params, "lr_high", s.lrHigh, { low: 0 });
      s.count = numberParam(params, "count", s.count, { low: 2, high: 128, int: true });
      s.lbSteps = numberParam(params, "lb_steps", s.lbSteps, { low: 1, high: 5000, int: true });
      state = s;
      basins = null;
      lrBeta = null;
      cellRun = null;
      buildControls();
    },
    params: () => [["surface", state.surface], ["opt", encodeOptimizer(state.optimizer)], ["steps", state.steps],
      ["grid", state.grid], ["cell", state.cell ? state.cell.join(",") : null], ["lb_surface", state.lbSurface],
      ["lb_opt", state.lbOptimizer], ["lr_low", state.lrLow], ["lr_high", state.lrHigh], ["count", state.count],
      ["lb_steps", state.lbSteps]],
    activate() {
      active = true;
      askBasins([]);
      askLrBeta([]);
    },
    deactivate() {
      active = false;
      basinChannel.cancel();
      lbChannel.cancel();
      cellChannel.cancel();
    },
    lastRuns: () => (cellRun ? [cellRun] : []),
    answer: () => ({ basins, lrBeta, cellRun }),
    state: () => state,
    idle: async () => {
      await Promise.all([basinChannel.idle(), lbChannel.idle(), cellChannel.idle()]);
      await drawing;
    },
  };
}
