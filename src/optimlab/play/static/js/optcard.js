// One optimizer's controls: its name, preset, the hyperparameters /api/optimizers lists (log
// sliders where the API says log, checkboxes for booleans), and a learning-rate schedule.
// The card edits one entry {name, preset, hyperparameters, schedule} in place and reports
// `onInput(event)` for slider moves (the fast path) and `onChange(event)` for everything else.

import { checkbox, el, numberBox, select, slider } from "./controls.js";
import { defaultOf } from "./catalogue.js";

const FALLBACK_LR = 0.01;

/** The value a parameter shows: the entry's own value, else the preset's default. */
export function valueOf(entry, parameter, catalogue) {
  if (entry.hyperparameters[parameter.name] !== undefined) return entry.hyperparameters[parameter.name];
  const d = defaultOf(parameter, entry.preset);
  if (d !== null && d !== undefined) return d;
  if (parameter.name === "learning_rate") return FALLBACK_LR;
  return parameter.kind === "bool" ? false : parameter.low ?? 0;
}

/** Make sure the entry carries a learning rate (a preset such as optax requires one). */
export function settle(entry, catalogue) {
  const spec = catalogue.optimizers.get(entry.name);
  if (!spec) return entry;
  const lr = spec.hyperparameters.find((p) => p.name === "learning_rate");
  if (lr && entry.hyperparameters.learning_rate === undefined) {
    entry.hyperparameters.learning_rate = valueOf(entry, lr, catalogue);
  }
  // drop values the optimizer does not take (after a change of name)
  const known = new Set(spec.hyperparameters.map((p) => p.name));
  for (const key of Object.keys(entry.hyperparameters)) if (!known.has(key)) delete entry.hyperparameters[key];
  return entry;
}

export function optimizerCard(entry, catalogue, { index, onInput, onChange, onRemove, only = null,
  removable = true, title = null }) {
  const card = el("fieldset", { class: "card optimizer" });
  const legend = el("legend");
  card.append(legend);
  const body = el("div", { class: "card-body" });
  card.append(body);

  const names = [...catalogue.optimizers.keys()].filter((n) => !only || only.includes(n));
  const render = () => {
    const spec = catalogue.optimizers.get(entry.name);
    const colour = spec ? spec.color : "#555";
    legend.replaceChildren(
      el("span", { class: "swatch", style: `background:${colour}` }),
      title || `${index + 1} · ${entry.name}`,
    );
    card.style.setProperty("--accent", colour);
    body.replaceChildren();
    const head = el("div", { class: "row" });
    head.append(select({
      label: "optimizer",
      options: names.map((n) => [n, n]),
      value: entry.name,
      onChange: (v, event) => {
        entry.name = v;
        entry.hyperparameters = { learning_rate: entry.hyperparameters.learning_rate };
        settle(entry, catalogue);
        render();
        onChange(event);
      },
    }).node);
    head.append(select({
      label: "preset",
      options: catalogue.presets.map((p) => [p, p]),
      value: entry.preset,
      title: "whose defaults and formulas: Keras, PyTorch or optax",
      onChange: (v, event) => {
        entry.preset = v;
        render();
        onChange(event);
      },
    }).node);
    if (removable) {
      head.append(el("button", {
        type: "button", class: "remove", "aria-label": `remove optimizer ${index + 1}`,
        title: "remove this optimizer", text: "✕", onclick: (event) => onRemove(event),
      }));
    }
    body.append(head);
    if (!spec) return;
    for (const p of spec.hyperparameters) {
      const value = valueOf(entry, p, catalogue);
      if (p.kind === "bool") {
        body.append(checkbox({
          label: p.label, value,
          onChange: (v, event) => {
            entry.hyperparameters[p.name] = v;
            onChange(event);
          },
        }).node);
      } else if (p.choices) {
        body.append(select({
          label: p.label, options: p.choices.map((c) => [String(c), String(c)]), value: String(value),
          onChange: (v, event) => {
            entry.hyperparameters[p.name] = v;
            onChange(event);
          },
        }).node);
      } else if (p.low !== null && p.high !== null) {
        body.append(slider({
          label: p.label, low: p.low, high: p.high, value, log: p.log, kind: p.kind, step: p.step,
          onInput: (v, event) => {
            entry.hyperparameters[p.name] = v;
            onInput(event);
          },
        }).node);
      } else {
        body.append(numberBox({
          label: p.label, value,
          onChange: (v, event) => {
            entry.hyperparameters[p.name] = v;
            onChange(event);
          },
        }).node);
      }
    }
    if (catalogue.schedules.length) body.append(scheduleControls(entry, catalogue, onChange));
  };
  render();
  return { node: card, render };
}

function scheduleControls(entry, catalogue, onChange) {
  const box = el("div", { class: "schedule" });
  const args = el("div", { class: "schedule-args" });
  const fillArgs = () => {
    args.replaceChildren();
    if (!entry.schedule) return;
    const spec = catalogue.schedules.find((s) => s.name === entry.schedule.name);
    if (!spec) return;
    for (const a of spec.arguments) {
      if (entry.schedule.arguments[a.name] === undefined) {
        const d = defaultOf(a, entry.preset);
        entry.schedule.arguments[a.name] = d ?? a.low ?? 1;
      }
      const value = entry.schedule.arguments[a.name];
      if (a.kind === "bool") {
        args.append(checkbox({
          label: a.label, value,
          onChange: (v, event) => {
            entry.schedule.arguments[a.name] = v;
            onChange(event);
          },
        }).node);
      } else if (a.low !== null && a.high !== null) {
        args.append(slider({
          label: a.label, low: a.low, high: a.high, value, log: a.log, kind: a.kind, step: a.step,
          onInput: (v, event) => {
            entry.schedule.arguments[a.name] = v;
            onChange(event);
          },
        }).node);
      } else {
        args.append(numberBox({
          label: a.label, value, low: a.low, high: a.high, step: a.kind === "int" ? 1 : "any",
          onChange: (v, event) => {
            entry.schedule.arguments[a.name] = a.kind === "int" ? Math.round(v) : v;
            onChange(event);
          },
        }).node);
      }
    }
  };
  box.append(select({
    label: "learning-rate schedule",
    options: [["", "constant"], ...catalogue.schedules.map((s) => [s.name, s.name])],
    value: entry.schedule ? entry.schedule.name : "",
    onChange: (v, event) => {
      entry.schedule = v ? { name: v, arguments: {} } : null;
      fillArgs();
      onChange(event);
    },
  }).node);
  box.append(args);
  fillArgs();
  return box;
}

/** The request form of an entry: {name, preset, hyperparameters, schedule?}. */
export function requestOf(entry) {
  const o = { name: entry.name, preset: entry.preset, hyperparameters: { ...entry.hyperparameters } };
  if (entry.schedule) o.schedule = { name: entry.schedule.name, arguments: { ...entry.schedule.arguments } };
  return o;
}
