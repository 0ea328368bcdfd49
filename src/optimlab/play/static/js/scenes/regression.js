// The lecture's 500-row regression (POST /api/regression): batch size, epochs and learning
// rate; the (w, b) path on the loss contours, the loss per update and per gradient evaluation,
// and the update count. The previous setting stays in grey for comparison.

import { sceneRequest } from "../api.js";
import { el, numberBox, select, slider } from "../controls.js";
import { contourImage, drawMarker, drawPath, fit, lineChart, mapFrame, onResize } from "../plot.js";
import { numberParam } from "../url.js";

const ROWS = 500;

function defaults() {
  return { batch: 100, epochs: 10, lr: 0.1, optimizer: "SGD", seed: 0 };
}

export function createRegression(root, ctx) {
  let state = defaults();
  let answer = null;
  let previous = null;
  let image = null;
  let active = false;
  const $ = (id) => root.querySelector(`#${id}`);
  const map = $("reg-map");
  const updatesCanvas = $("reg-updates");
  const evalsCanvas = $("reg-evals");
  const count = $("reg-count");
  const controls = $("regression-controls");
  const errorBox = el("p", { class: "error", role: "alert" });

  const body = () => ({ batch_size: state.batch, epochs: state.epochs, learning_rate: state.lr,
    optimizer: { name: state.optimizer }, seed: state.seed });
  const { channel, request } = sceneRequest(ctx, {
    path: "/api/regression",
    scene: "regression",
    errorBox,
    codeLabel: "the regression",
    body,
    isActive: () => active,
    accept: (a, inputs) => {
      if (answer && JSON.stringify(answer.contours.w) !== JSON.stringify(a.contours.w)) image = null;
      if (answer && inputs.length) previous = answer;
      answer = a;
    },
    draw,
  });

  function cumulative(a) {
    const per = a.evaluations_per_update;
    const n = a.loss_per_update.length;
    const xs = [];
    let total = 0;
    const offset = n === a.updates + 1 ? 1 : 0; // a loss before the first update, at 0 rows seen
    for (let i = 0; i < n; i++) {
      if (i >= offset) total += Array.isArray(per) ? per[i - offset] ?? 0 : per;
      xs.push(offset && i === 0 ? 0 : total);
    }
    return xs;
  }

  function draw() {
    if (!answer) return;
    const a = answer;
    const { ctx: c, width, height } = fit(map);
    const { w, b, loss } = a.contours;
    const domain = [[w[0], w[w.length - 1]], [b[0], b[b.length - 1]]];
    const frame = mapFrame(width, height, domain);
    if (!image || image.width !== width || image.height !== height) {
      image = { canvas: contourImage({ x: w, y: b, z: loss }, frame, width, height), width, height };
    }
    c.clearRect(0, 0, width, height);
    c.drawImage(image.canvas, 0, 0, width, height);
    if (previous) drawPath(c, frame, previous.path, previous.path.length, "rgba(90,90,100,0.45)", { width: 1.5, dot: false });
    drawPath(c, frame, a.path, a.path.length, "#D55E00", { width: 1.8 });
    drawMarker(c, frame, a.path[0], "start");
    drawMarker(c, frame, a.optimum, "min");
    const offset = (x) => (x.loss_per_update.length === x.updates + 1 ? 0 : 1);
    const series = (x, colour, alpha) => ({
      x: x.loss_per_update.map((_, i) => i + offset(x)), y: x.loss_per_update, colour, alpha,
    });
    const evalSeries = (x, colour, alpha) => ({ x: cumulative(x), y: x.loss_per_update, colour, alpha });
    const grey = "#888";
    lineChart(updatesCanvas, [...(previous ? [series(previous, grey, 0.6)] : []), series(a, "#D55E00", 1)],
      { logY: true, xLabel: "update", yLabel: "loss (MSE)" });
    lineChart(evalsCanvas, [...(previous ? [evalSeries(previous, grey, 0.6)] : []), evalSeries(a, "#D55E00", 1)],
      { logY: true, xLabel: "gradient evaluations (rows)", yLabel: "loss (MSE)" });
    const batch = state.batch >= a.rows ? `the full batch (${a.rows})` : `batch ${state.batch}`;
    count.replaceChildren(
      el("strong", { text: `${a.rows} rows, ${batch}, ${state.epochs} epoch${state.epochs === 1 ? "" : "s"} = ${a.updates} updates` }),
      `, ${a.gradient_evaluations} gradient evaluations (rows seen); final loss ${Number(a.loss_per_update[a.loss_per_update.length - 1]).toPrecision(4)}`,
    );
  }

  let sliders = {};
  function buildControls() {
    const card = el("fieldset", { class: "card" }, [el("legend", { text: "training" })]);
    sliders.batch = slider({ label: "batch size", low: 1, high: ROWS, value: state.batch, log: true, kind: "int",
      onInput: (v, event) => { state.batch = v; request([ctx.stamp(event)]); } });
    sliders.epochs = slider({ label: "epochs", low: 1, high: 50, value: state.epochs, kind: "int",
      onInput: (v, event) => { state.epochs = v; request([ctx.stamp(event)]); } });
    sliders.lr = slider({ label: "learning rate", low: 1e-3, high: 1, value: state.lr, log: true,
      onInput: (v, event) => { state.lr = v; request([ctx.stamp(event)]); } });
    const names = [...ctx.catalogue.optimizers.keys()];
    const opt = select({ label: "optimizer", options: names.map((n) => [n, n]), value: state.optimizer,
      onChange: (v, event) => { state.optimizer = v; request([ctx.stamp(event)]); } });
    const seed = numberBox({ label: "seed (initial point and shuffle)", value: state.seed, low: 0, step: 1,
      onChange: (v, event) => { state.seed = Math.max(0, Math.round(v)); request([ctx.stamp(event)]); } });
    const presets = el("div", { class: "row presets" }, [
      el("span", { class: "label", text: "the lecture's three:" }),
      ...[["batch GD", ROWS], ["mini-batch", 100], ["stochastic", 1]].map(([text, b]) => el("button", {
        type: "button", class: "small", text, onclick: (event) => {
          state.batch = b;
          sliders.batch.set(b);
          request([ctx.stamp(event)]);
        },
      })),
    ]);
    card.append(presets, sliders.batch.node, sliders.epochs.node, sliders.lr.node, opt.node, seed.node);
    controls.replaceChildren(card, errorBox);
  }

  onResize([map, updatesCanvas, evalsCanvas], () => {
    if (!active) return;
    image = null;
    draw();
  });

  return {
    name: "regression",
    load(params) {
      const s = defaults();
      s.batch = numberParam(params, "batch", s.batch, { low: 1, high: ROWS, int: true });
      s.epochs = numberParam(params, "epochs", s.epochs, { low: 1, high: 50, int: true });
      s.lr = numberParam(params, "lr", s.lr, { low: 0 });
      s.seed = numberParam(params, "seed", s.seed, { low: 0, int: true });
      if (params.has("optimizer") && ctx.catalogue.optimizers.has(params.get("optimizer"))) s.optimizer = params.get("optimizer");
      state = s;
      answer = null;
      previous = null;
      buildControls();
    },
    params: () => [["batch", state.batch], ["epochs", state.epochs], ["lr", state.lr],
      ["optimizer", state.optimizer === "SGD" ? null : state.optimizer], ["seed", state.seed || null]],
    activate() {
      active = true;
      request([]);
    },
    deactivate() {
      active = false;
      channel.cancel();
    },
    lastRuns: () => (answer ? [{ label: state.optimizer, path: answer.path, loss: answer.loss_per_update }] : null),
    answer: () => answer,
    state: () => state,
    idle: () => channel.idle(),
  };
}
