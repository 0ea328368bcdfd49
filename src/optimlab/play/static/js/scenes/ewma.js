// The exponentially weighted moving average (POST /api/ewma): beta, bias correction, V0 and the
// signal; the average over the signal with the 1/(1 - beta) window shaded.

import { sceneRequest } from "../api.js";
import { checkbox, el, radios, select, slider } from "../controls.js";
import { lineChart, onResize } from "../plot.js";
import { boolParam, numberParam } from "../url.js";

function defaults() {
  return { beta: 0.9, bias: false, initial: "zero", signal: "lecture", seed: 0, day: null };
}

export function createEwma(root, ctx) {
  let state = defaults();
  let answer = null;
  let frame = null;
  let active = false;
  const $ = (id) => root.querySelector(`#${id}`);
  const chart = $("ewma-chart");
  const text = $("ewma-window");
  const controls = $("ewma-controls");
  const errorBox = el("p", { class: "error", role: "alert" });
  const table = el("table", { class: "numbers" });
  chart.closest("figure").after(el("div", { class: "table-wrap" }, [table]));

  const body = () => ({ beta: state.beta, bias_correction: state.bias, initial: state.initial,
    signal: state.signal, seed: state.seed });
  const { channel, request } = sceneRequest(ctx, {
    path: "/api/ewma",
    scene: "ewma",
    errorBox,
    codeLabel: "the moving average",
    body,
    isActive: () => active,
    accept: (a) => {
      answer = a;
    },
    draw,
  });

  function markedDay() {
    const days = answer.days;
    if (state.day !== null && state.day >= days[0] && state.day <= days[days.length - 1]) return state.day;
    return days[Math.floor((days.length * 2) / 3)];
  }

  function draw() {
    if (!answer) return;
    const a = answer;
    const day = markedDay();
    const window = a.window;
    const dots = a.days.length > 60 ? 1.6 : 4.5;
    const truth = a.truth ? [{ x: a.days, y: a.truth, colour: "#2e7d32", width: 1.2, dash: [5, 4] }] : [];
    frame = lineChart(chart, [
      ...truth,
      { x: a.days, y: a.signal, colour: "#7a8699", dots },
      { x: a.days, y: a.average, colour: "#D55E00", width: 2.5 },
    ], { xLabel: "day", yLabel: "temperature", band: { from: day - window, to: day },
      marker: day, integerX: true });
    writeTable(a);
    const corrected = state.bias ? "with bias correction" : "without bias correction";
    const start = state.initial === "zero" ? "V₀ = 0" : "V₀ = θ₀";
    text.replaceChildren(
      el("strong", { text: `β = ${state.beta}: averages over about 1/(1 − β) = ${Number(window.toPrecision(4))} days` }),
      ` (${start}, ${corrected}). The shaded window ends at day ${day}.`,
      a.truth ? " Dashed green: the clean curve under the noise." : "",
    );
  }

  function writeTable(a) {
    if (a.days.length > 12) {
      table.replaceChildren();
      return;
    }
    const row = (head, values) => el("tr", {}, [el("th", { scope: "row", text: head }),
      ...values.map((v) => el("td", { text: v === null ? "—" : String(Number(Number(v).toPrecision(4))) }))]);
    table.replaceChildren(
      el("caption", { text: "the numbers, day by day (as in the lecture)" }),
      el("tbody", {}, [row("day t", a.days), row("θ_t", a.signal), row("V_t", a.average)]),
    );
  }

  chart.addEventListener("click", (event) => {
    if (!frame || !answer) return;
    const r = chart.getBoundingClientRect();
    state.day = Math.round(frame.dx(event.clientX - r.left));
    draw();
    ctx.changed();
  });

  function buildControls() {
    const card = el("fieldset", { class: "card" }, [el("legend", { text: "the average" })]);
    const beta = slider({ label: "β", low: 0, high: 0.99, value: state.beta, step: 0.01,
      onInput: (v, event) => { state.beta = v; request([ctx.stamp(event)]); } });
    const bias = checkbox({ label: "bias correction V_t / (1 − β^t)", value: state.bias,
      title: "corrects the start from V₀ = 0 (with V₀ = θ₀ there is nothing to correct)",
      onChange: (v, event) => { state.bias = v; request([ctx.stamp(event)]); } });
    const initial = radios({ label: "start the average from", name: "ewma-initial",
      options: [["zero", "V₀ = 0"], ["first", "V₀ = θ₀ (the first value)"]], value: state.initial,
      onChange: (v, event) => {
        state.initial = v;
        if (v === "first") {
          state.bias = false;
          bias.set(false);
        }
        bias.input.disabled = v === "first";
        request([ctx.stamp(event)]);
      } });
    bias.input.disabled = state.initial === "first";
    const signal = select({ label: "signal",
      options: [["lecture", "the lecture's temperatures"], ["noisy", "a noisy year"]], value: state.signal,
      onChange: (v, event) => { state.signal = v; state.day = null; request([ctx.stamp(event)]); } });
    card.append(beta.node, bias.node, initial.node, signal.node);
    controls.replaceChildren(card, errorBox);
  }

  onResize([chart], () => {
    if (active) draw();
  });

  return {
    name: "ewma",
    load(params) {
      const s = defaults();
      s.beta = numberParam(params, "beta", s.beta, { low: 0, high: 0.999999 });
      s.bias = boolParam(params, "bias", s.bias);
      s.initial = params.get("v0") === "first" ? "first" : "zero";
      if (s.initial === "first") s.bias = false; // nothing to correct (the API refuses both)
      s.signal = params.get("signal") === "noisy" ? "noisy" : "lecture";
      s.seed = numberParam(params, "seed", s.seed, { low: 0, int: true });
      s.day = numberParam(params, "day", null, { int: true });
      state = s;
      answer = null;
      buildControls();
    },
    params: () => [["beta", state.beta], ["bias", state.bias ? 1 : 0], ["v0", state.initial],
      ["signal", state.signal], ["seed", state.seed || null], ["day", state.day]],
    activate() {
      active = true;
      request([]);
    },
    deactivate() {
      active = false;
      channel.cancel();
    },
    lastRuns: () => (answer ? [{ label: "ewma", days: answer.days, average: answer.average }] : null),
    answer: () => answer,
    state: () => state,
    idle: () => channel.idle(),
  };
}
