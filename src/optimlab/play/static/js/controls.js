// Labelled form controls. Every control has a visible <label for=...>; sliders show their value
// in an <output>. A slider on a log scale moves in equal ratios; its value is rounded to three
// significant digits so that a shared URL stays short and restores exactly.

let serial = 0;
function uid(prefix) {
  serial += 1;
  return `${prefix}-${serial}`;
}

export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of [].concat(children)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function round3(v) {
  if (!Number.isFinite(v) || v === 0) return v;
  return Number(v.toPrecision(3));
}

export function show(v, kind = "float") {
  if (v === null || v === undefined) return "—";
  if (kind === "int") return String(Math.round(v));
  if (typeof v === "boolean") return v ? "on" : "off";
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1).replace("e+", "e");
  return String(Number(v.toPrecision(4)));
}

const POSITIONS = 1000;

/**
 * A range slider for a number in [low, high]. `log` maps positions to equal ratios; `kind`
 * "int" rounds to integers. `onInput(value, event)` fires on every move.
 * Returns {node, input, get(), set(value), setDisabled()}.
 */
export function slider({ label, low, high, value, log = false, kind = "float", step = null,
  title = null, onInput }) {
  const id = uid("s");
  const input = el("input", { type: "range", id, min: 0, max: POSITIONS, step: 1, title });
  const out = el("output", { for: id, class: "value" });
  const toValue = (pos) => {
    const t = pos / POSITIONS;
    let v = log ? 10 ** (Math.log10(low) + t * (Math.log10(high) - Math.log10(low)))
      : low + t * (high - low);
    if (kind === "int") v = Math.round(v);
    else if (log) v = round3(v);
    else if (step) v = Number((Math.round(v / step) * step).toFixed(8));
    else v = Number(v.toPrecision(4));
    return Math.min(high, Math.max(low, v));
  };
  const toPos = (v) => {
    if (!Number.isFinite(v)) return 0;
    const c = Math.min(high, Math.max(low, v));
    const t = log ? (Math.log10(c) - Math.log10(low)) / (Math.log10(high) - Math.log10(low))
      : (c - low) / (high - low);
    return Math.round(t * POSITIONS);
  };
  let current = value;
  const set = (v) => {
    current = v;
    input.value = String(toPos(v));
    out.textContent = show(v, kind);
  };
  set(value);
  input.addEventListener("input", (event) => {
    const v = toValue(Number(input.value));
    current = v;
    out.textContent = show(v, kind);
    onInput(v, event);
  });
  const node = el("div", { class: "control slider" }, [
    el("label", { for: id }, [label, " ", out]),
    input,
  ]);
  return { node, input, get: () => current, set };
}

/** A <select> of [value, text] options. */
export function select({ label, options, value, onChange, title = null }) {
  const id = uid("c");
  const input = el("select", { id, title });
  const fill = (opts) => {
    input.replaceChildren(...opts.map(([v, text]) => el("option", { value: v, text })));
  };
  fill(options);
  input.value = value;
  input.addEventListener("change", (event) => onChange(input.value, event));
  const node = el("div", { class: "control select" }, [el("label", { for: id, text: label }), input]);
  return { node, input, get: () => input.value, set: (v) => { input.value = v; }, fill };
}

/** A checkbox. */
export function checkbox({ label, value, onChange, title = null }) {
  const id = uid("b");
  const input = el("input", { type: "checkbox", id, title });
  input.checked = Boolean(value);
  input.addEventListener("change", (event) => onChange(input.checked, event));
  const node = el("div", { class: "control checkbox" }, [input, el("label", { for: id, text: label })]);
  return { node, input, get: () => input.checked, set: (v) => { input.checked = Boolean(v); } };
}

/** A number box (schedule arguments, grid sizes). */
export function numberBox({ label, value, low = null, high = null, step = "any", onChange }) {
  const id = uid("n");
  const input = el("input", { type: "number", id, min: low, max: high, step, inputmode: "decimal" });
  input.value = String(value);
  input.addEventListener("change", (event) => {
    const v = Number(input.value);
    if (Number.isFinite(v)) onChange(v, event);
  });
  const node = el("div", { class: "control number" }, [el("label", { for: id, text: label }), input]);
  return { node, input, get: () => Number(input.value), set: (v) => { input.value = String(v); } };
}

/** A group of radio buttons. */
export function radios({ label, name, options, value, onChange }) {
  const fieldset = el("fieldset", { class: "control radios" }, [el("legend", { text: label })]);
  const inputs = options.map(([v, text]) => {
    const id = uid("r");
    const input = el("input", { type: "radio", id, name, value: v });
    input.checked = v === value;
    input.addEventListener("change", (event) => {
      if (input.checked) onChange(v, event);
    });
    fieldset.append(el("span", { class: "radio" }, [input, el("label", { for: id, text })]));
    return input;
  });
  return {
    node: fieldset,
    get: () => (inputs.find((i) => i.checked) || {}).value,
    set: (v) => inputs.forEach((i) => { i.checked = i.value === v; }),
  };
}
