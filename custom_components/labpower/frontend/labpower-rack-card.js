/*
 * labpower rack card: the lab at a glance.
 *
 * A plain ES module web component, served and registered by the labpower integration (no
 * build step, no dependencies). It asks Home Assistant once for the resources (websocket
 * command "labpower/resources": names, labels, state, tokens, entity ids), then follows
 * their changes (labpower/subscribe_resources): a resource's State and Holders sensors are
 * disabled by default, so that a lab of thousands stays within Home Assistant's entity
 * limit. A click on a tile opens the more-info dialog of the resource's Power switch: on
 * takes a hold, off releases it.
 *
 *   type: custom:labpower-rack-card
 *   title: Lab              # optional
 *   group_by: rack          # optional: a label prefix (or a list): "rack:A" -> rack A
 *   lab: Demo lab           # optional: only this lab's resources
 *   positions:              # optional: "group/slot" per resource, over "position:" labels
 *     builder-1: A/1
 *   savings: false          # optional: no savings line (cost avoided today, week, month)
 */

const CARD = "labpower-rack-card";
const EDITOR = "labpower-rack-card-editor";
const STATES = ["off", "starting", "available", "stopping", "fault", "unknown"];
const STATE_NAMES = {
  off: "Off",
  starting: "Starting",
  available: "Available",
  stopping: "Stopping",
  fault: "Fault",
  unknown: "Unknown",
};
const POSITION = "position";
const MAX_EMPTY_SLOTS = 48;

const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
const TICK_MS = 30000; // time left is shown in minutes: redraw twice a minute
const SAVINGS_MS = 300000; // the recorder compiles its statistics every five minutes
const SAVINGS_PERIODS = [
  ["day", "today"],
  ["week", "this week"],
  ["month", "this month"],
];

/* "45 min", "3 h 20 min", "2 d 4 h"; null for a token without an end. */
export function timeLeft(expires, now = Date.now()) {
  if (!expires) return null;
  const minutes = Math.max(0, Math.ceil((Date.parse(expires) - now) / 60000));
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  return hours % 24 ? `${Math.floor(hours / 24)} d ${hours % 24} h` : `${Math.floor(hours / 24)} d`;
}

/* One token as people read it: "alice (hold, 1 h 5 min left)". */
export function describeToken(token, now = Date.now()) {
  const left = timeLeft(token.expires, now);
  return `${token.holder} (${token.kind}${left === null ? "" : `, ${left} left`})`;
}

/*
 * A resource's state as the cards show it: {state (one of STATES), stateText and
 * reason (translated once the frontend has labpower's translations)}, from its State sensor
 * where that is enabled, else from labpower/resources and its subscription.
 */
export function stateInfo(hass, resource) {
  const stateObj = hass.states[resource.entities?.state];
  let state = stateObj ? stateObj.state : resource.state;
  if (!STATES.includes(state)) state = "unknown";
  let stateText = STATE_NAMES[state];
  if (stateObj && STATES.includes(stateObj.state) && hass.formatEntityState) {
    const formatted = hass.formatEntityState(stateObj);
    if (formatted && formatted !== stateObj.state) stateText = formatted;
  } else if (!stateObj && hass.localize) {
    const translated = hass.localize(`component.labpower.entity.sensor.state.state.${state}`);
    if (translated) stateText = translated;
  }
  let reason = stateObj ? stateObj.attributes?.reason : resource.reason;
  if (reason && stateObj && hass.formatEntityAttributeValue)
    reason = hass.formatEntityAttributeValue(stateObj, "reason") || reason;
  return { state, stateText, reason: reason ?? undefined };
}

/* Holder count and tokens ({holder, kind, since, expires}), oldest first. */
export function holdersInfo(hass, resource) {
  const holdersObj = hass.states[resource.entities?.holders];
  if (holdersObj && /^\d+$/.test(holdersObj.state))
    return {
      holders: Number(holdersObj.state),
      tokens: Array.isArray(holdersObj.attributes?.tokens) ? holdersObj.attributes.tokens : [],
    };
  return { holders: resource.holders ?? 0, tokens: resource.tokens ?? [] };
}

/* Whether a card would show the same objects (state objects, localize) as last time. */
const sameObjects = (previous, shown) =>
  previous !== null && previous.length === shown.length && shown.every((s, i) => s === previous[i]);

const escape = (text) =>
  String(text).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );

/* "A/2" -> {group: "A", slot: "2"}; "2" -> {group: null, slot: "2"}. */
/* A formatter of amounts in this currency, as the user's locale writes them ("1,20 €"). */
export function formatMoney(hass, currency) {
  const locale = hass?.locale?.language;
  try {
    const format = new Intl.NumberFormat(locale, { style: "currency", currency });
    return (amount) => format.format(amount);
  } catch (_err) {
    return (amount) => `${amount.toFixed(2)} ${currency ?? ""}`.trim(); // not an ISO code
  }
}

function parsePosition(text) {
  const value = String(text).trim();
  const cut = value.lastIndexOf("/");
  if (cut < 0) return { group: null, slot: value || null };
  return { group: value.slice(0, cut).trim() || null, slot: value.slice(cut + 1).trim() || null };
}

/* The value of the first label "prefix:value" for one of the prefixes, with its prefix. */
function labelValue(labels, prefixes) {
  for (const prefix of prefixes) {
    const wanted = `${prefix.toLowerCase()}:`;
    const label = labels.find((l) => l.toLowerCase().startsWith(wanted));
    if (label !== undefined) return { prefix, value: label.slice(wanted.length).trim() };
  }
  return null;
}

/*
 * Groups (racks, stacks) of resources in display order. Each group: {key, title, slots},
 * a slot being {resource} or {empty: "n"} (a gap between numbered positions).
 */
export function layout(resources, config) {
  const prefixes = config.group_by ?? [];
  const positions = config.positions ?? {};
  const groups = new Map();
  let grouped = false;
  for (const resource of resources) {
    const labels = resource.labels ?? [];
    const override = positions[resource.name];
    const label = labelValue(labels, [POSITION]);
    const position = parsePosition(override ?? (label ? label.value : ""));
    const byLabel = labelValue(labels, prefixes);
    let group = null; // {prefix, value}
    if (position.group !== null) group = { prefix: prefixes[0] ?? "", value: position.group };
    else if (byLabel !== null && byLabel.value) group = byLabel;
    if (group !== null) grouped = true;
    const key = group === null ? "" : `${group.prefix}:${group.value}`;
    if (!groups.has(key)) {
      groups.set(key, {
        key,
        title: group === null ? null : [group.prefix, group.value].filter(Boolean).join(" "),
        rank: group === null ? Infinity : Math.max(prefixes.indexOf(group.prefix), 0),
        value: group?.value ?? "",
        members: [],
      });
    }
    groups.get(key).members.push({ resource, slot: position.slot });
  }
  // By group_by's order of prefixes (racks, then stacks), then by name; ungrouped last.
  const ordered = [...groups.values()].sort(
    (a, b) => a.rank - b.rank || collator.compare(a.value, b.value),
  );
  for (const group of ordered) {
    if (group.key === "") group.title = grouped ? "other" : null;
    group.members.sort((a, b) => {
      if (a.slot !== null && b.slot !== null && a.slot !== b.slot)
        return collator.compare(a.slot, b.slot);
      if ((a.slot === null) !== (b.slot === null)) return a.slot === null ? 1 : -1;
      return collator.compare(a.resource.name, b.resource.name);
    });
    group.slots = [];
    let previous = null;
    for (const member of group.members) {
      const number = /^\d+$/.test(member.slot ?? "") ? Number(member.slot) : null;
      if (number !== null && previous !== null && number - previous > 1) {
        const gap = Math.min(number - previous - 1, MAX_EMPTY_SLOTS);
        for (let n = 1; n <= gap; n++) group.slots.push({ empty: String(previous + n) });
      }
      if (number !== null) previous = number;
      group.slots.push({ resource: member.resource, slot: member.slot });
    }
    delete group.members;
    delete group.rank;
    delete group.value;
  }
  return { grouped, groups: ordered };
}

const STYLE = `
  :host {
    --lp-off: var(--state-inactive-color, var(--disabled-text-color, #6f6f6f));
    --lp-starting: var(--warning-color, #ffa600);
    --lp-available: var(--success-color, #43a047);
    --lp-stopping: var(--info-color, #039be5);
    --lp-fault: var(--error-color, #db4437);
    --lp-unknown: var(--disabled-color, #bdbdbd);
    --lp-surface: var(--ha-card-background, var(--card-background-color, #fff));
  }
  .content { padding: 0 16px 16px; }
  .content.no-header { padding-top: 16px; }
  .savings {
    margin: -4px 0 12px; font-size: 0.9rem; color: var(--secondary-text-color); white-space: pre-line;
  }
  .savings[hidden] { display: none; }
  .lab {
    display: grid;
    gap: 12px;
    grid-template-columns: repeat(auto-fit, minmax(min(100%, 170px), 1fr));
    align-items: start;
  }
  .lab.single { grid-template-columns: 1fr; }
  .rack {
    border: 1px solid var(--divider-color, rgba(0, 0, 0, 0.12));
    border-radius: 12px;
    padding: 8px;
    background: var(--secondary-background-color, transparent);
    min-width: 0;
  }
  .lab.single .rack { border: none; padding: 0; background: none; }
  .rack-name {
    margin: 0 4px 8px;
    font-size: 0.8rem;
    font-weight: 500;
    letter-spacing: 0.06em;
    text-transform: uppercase;
    color: var(--secondary-text-color);
  }
  .slots { display: grid; gap: 6px; grid-template-columns: 1fr; }
  .lab.single .slots {
    grid-template-columns: repeat(auto-fill, minmax(min(100%, 140px), 1fr));
  }
  .tile {
    --lp-color: var(--lp-unknown);
    all: unset;
    box-sizing: border-box;
    display: flex;
    flex-direction: column;
    justify-content: center;
    gap: 2px;
    min-height: 54px;
    min-width: 0;
    padding: 6px 10px 6px 12px;
    border-radius: 8px;
    border-left: 5px solid var(--lp-color);
    background: color-mix(in srgb, var(--lp-color) 22%, var(--lp-surface));
    color: var(--primary-text-color);
    cursor: pointer;
    transition: background-color 0.3s, border-color 0.3s;
  }
  .tile:hover { background: color-mix(in srgb, var(--lp-color) 34%, var(--lp-surface)); }
  .tile:focus-visible { outline: 2px solid var(--primary-color); outline-offset: 2px; }
  .tile[data-state="off"] { --lp-color: var(--lp-off); }
  .tile[data-state="starting"] { --lp-color: var(--lp-starting); }
  .tile[data-state="available"] { --lp-color: var(--lp-available); }
  .tile[data-state="stopping"] { --lp-color: var(--lp-stopping); }
  .tile[data-state="fault"] { --lp-color: var(--lp-fault); }
  .tile[data-state="off"] { background: color-mix(in srgb, var(--lp-color) 10%, var(--lp-surface)); }
  .tile[data-state="unknown"] { border-left-style: dashed; }
  .tile[data-state="starting"], .tile[data-state="stopping"] {
    animation: lp-pulse 1.6s ease-in-out infinite;
  }
  @keyframes lp-pulse { 50% { border-left-color: color-mix(in srgb, var(--lp-color) 35%, transparent); } }
  @media (prefers-reduced-motion: reduce) { .tile { animation: none !important; } }
  .name {
    font-weight: 500;
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
  }
  .meta {
    display: flex;
    justify-content: space-between;
    align-items: center;
    gap: 8px;
    font-size: 0.85rem;
    color: var(--secondary-text-color);
  }
  .state { font-weight: 500; color: var(--primary-text-color); }
  .holders { display: inline-flex; align-items: center; gap: 2px; white-space: nowrap; }
  .holders ha-icon { --mdc-icon-size: 16px; }
  .holders[data-count="0"] { opacity: 0.6; }
  .who {
    font-size: 0.8rem;
    color: var(--secondary-text-color);
    overflow: hidden;
    text-overflow: ellipsis;
    white-space: nowrap;
  }
  .who:empty { display: none; }
  .empty {
    box-sizing: border-box;
    min-height: 54px;
    border: 1px dashed var(--divider-color, rgba(0, 0, 0, 0.12));
    border-radius: 8px;
    display: flex;
    align-items: center;
    padding-left: 12px;
    color: var(--disabled-text-color, #9e9e9e);
    font-size: 0.8rem;
  }
  .message { color: var(--secondary-text-color); padding: 8px 0; }
  .message.error { color: var(--error-color, #db4437); }
`;

/*
 * What both cards share: the resources from labpower/resources, fetched once, then again
 * when labpower's entities were added or removed, a lab was set up or unloaded (or when a
 * card asks), and never while a fetch is under way (then once more after it). After each
 * fetch the card's _fetched() runs, and _render() after the last. In between, the
 * resources' state and tokens follow labpower/subscribe_resources (subscribed before the
 * first fetch, so that no change falls in between), and the card draws them (_live()).
 */
class LabpowerResourcesCard extends HTMLElement {
  constructor() {
    super();
    this._config = null;
    this._hass = null;
    this._resources = null; // from labpower/resources
    this._error = null;
    this._fetching = false;
    this._fetchAgain = false;
    this._entitiesSeen = undefined; // hass.entities last looked at
    this._signature = null; // labpower's entity ids then
    this._labs = []; // from labpower/resources: each lab's own entities
    this._savings = {}; // Cost avoided sensor -> {day, week, month} from the statistics
    this._savingsTimer = null;
    this._subscription = null; // a promise of the unsubscribe function
  }

  /* Savings are asked for when the card is shown, then every SAVINGS_MS. */
  _startSavings() {
    clearInterval(this._savingsTimer);
    this._savingsTimer = setInterval(() => this._fetchSavings(), SAVINGS_MS);
    if (this._resources !== null) this._fetchSavings();
  }

  _stopSavings() {
    clearInterval(this._savingsTimer);
    this._savingsTimer = null;
  }

  /* The Cost avoided sensors of these labs (all: undefined). */
  _savingsOf(labs) {
    return this._labs
      .filter((lab) => labs === undefined || labs.includes(lab.name))
      .map((lab) => lab.entities?.cost_avoided)
      .filter(Boolean);
  }

  async _fetchSavings() {
    if (!this._hass) return;
    for (const id of this._savingsOf()) {
      const found = {};
      try {
        for (const [period] of SAVINGS_PERIODS) {
          const result = await this._hass.callWS({
            type: "recorder/statistic_during_period",
            statistic_id: id,
            calendar: { period },
            types: ["change"],
          });
          found[period] = result?.change ?? null;
        }
        this._savings[id] = found;
      } catch (_err) {
        this._savings[id] = null; // no recorder: the total so far instead
      }
    }
    this._savingsFetched();
  }

  /* New savings figures arrived. */
  _savingsFetched() {}

  /* "Saved 1.20 € today · 3.40 € this week · 9.10 € this month" for these labs. */
  _savingsText(labs) {
    const lines = [];
    for (const id of this._savingsOf(labs)) {
      const stateObj = this._hass?.states[id];
      const total = Number.parseFloat(stateObj?.state);
      if (!stateObj || Number.isNaN(total)) continue; // no price known: nothing to say
      const money = formatMoney(this._hass, stateObj.attributes?.unit_of_measurement);
      const lab = this._labs.length > 1 ? `${this._labs.find((l) => l.entities?.cost_avoided === id)?.name}: ` : "";
      const found = this._savings[id];
      const parts = found
        ? SAVINGS_PERIODS.filter(([period]) => found[period] !== null && found[period] !== undefined).map(
            ([period, text]) => `${money(found[period])} ${text}`,
          )
        : [];
      lines.push(`${lab}Saved ${parts.length ? parts.join(" · ") : `${money(total)} so far`}`);
    }
    return lines;
  }

  disconnectedCallback() {
    const subscription = this._subscription;
    this._subscription = null;
    subscription?.then((unsubscribe) => unsubscribe()).catch(() => {});
  }

  async _subscribe() {
    if (this._subscription !== null || !this._hass?.connection) return;
    this._subscription = this._hass.connection.subscribeMessage((event) => this._event(event), {
      type: "labpower/subscribe_resources",
    });
    try {
      await this._subscription;
    } catch (_err) {
      this._subscription = null; // an older labpower: the card still shows what it fetched
    }
  }

  _event(event) {
    if (event.reload) {
      this._fetch();
      return;
    }
    if (!this._resources || !event.changed) return;
    const changed = new Map(event.changed.map((r) => [`${r.lab}\n${r.name}`, r]));
    this._resources = this._resources.map((r) => {
      const now = changed.get(`${r.lab}\n${r.name}`);
      return now ? { ...now, entities: r.entities } : r;
    });
    this._live();
  }

  /* A resource's state or tokens changed (the subscription): draw them. */
  _live() {
    this._shown = null;
    this._render();
  }

  get hass() {
    return this._hass;
  }

  /* Fetch (again) when nothing was fetched yet, or labpower's entities were added or removed. */
  _entitiesChanged(hass) {
    if (this._resources === null && !this._fetching && this._error === null) return true;
    if (hass.entities === this._entitiesSeen) return false;
    this._entitiesSeen = hass.entities;
    const signature = Object.values(hass.entities ?? {})
      .filter((entry) => entry.platform === "labpower")
      .map((entry) => entry.entity_id)
      .sort()
      .join(",");
    const changed = this._signature !== null && signature !== this._signature;
    this._signature = signature;
    return changed;
  }

  async _fetch() {
    if (!this._hass) return;
    if (this._fetching) {
      this._fetchAgain = true;
      return;
    }
    this._fetching = true;
    try {
      await this._subscribe();
      const result = await this._hass.callWS({ type: "labpower/resources" });
      const first = this._resources === null;
      this._resources = result.resources;
      this._labs = result.labs ?? [];
      this._error = null;
      if (first) this._fetchSavings();
    } catch (err) {
      this._error = err?.code === "unknown_command" ? "labpower is not loaded." : err?.message ?? String(err);
    } finally {
      this._fetching = false;
    }
    this._fetched();
    if (this._fetchAgain) {
      this._fetchAgain = false;
      this._fetch();
      return;
    }
    this._render();
  }

  /* New resources (or an error): what the card derived from the old ones goes. */
  _fetched() {}
}

class LabpowerRackCard extends LabpowerResourcesCard {
  constructor() {
    super();
    this._dirty = false; // an entity went away (a reload): fetch again when it is back
    this._shown = null; // the state objects last rendered
    this._layout = null;
    this.attachShadow({ mode: "open" });
    this.shadowRoot.addEventListener("click", (ev) => this._clicked(ev));
  }

  static getStubConfig() {
    return { group_by: "rack" };
  }

  connectedCallback() {
    this._tick = setInterval(() => {
      this._shown = null; // time left changes without any state change
      this._render();
    }, TICK_MS);
    this._startSavings();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._tick);
    this._stopSavings();
  }

  _savingsFetched() {
    this._render();
  }

  static async getConfigElement() {
    return document.createElement(EDITOR);
  }

  setConfig(config) {
    if (!config || typeof config !== "object") throw new Error("Invalid configuration");
    let groupBy = config.group_by ?? [];
    if (typeof groupBy === "string") groupBy = [groupBy];
    if (!Array.isArray(groupBy) || groupBy.some((p) => typeof p !== "string" || !p))
      throw new Error("group_by must be a label prefix such as rack, or a list of them");
    const positions = config.positions ?? {};
    if (typeof positions !== "object" || Array.isArray(positions))
      throw new Error("positions must map resource names to positions such as A/2");
    if (config.lab !== undefined && typeof config.lab !== "string")
      throw new Error("lab must be the name of a lab");
    this._config = { ...config, group_by: groupBy, positions };
    this._layout = null;
    this._shown = null;
    this._render();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._entitiesChanged(hass)) this._fetch();
    else this._render();
  }

  getCardSize() {
    const groups = this._layout?.groups;
    if (!groups) return 3;
    if (!this._layout.grouped) return 1 + Math.ceil((groups[0]?.slots.length ?? 0) / 3);
    return 2 + Math.max(...groups.map((group) => group.slots.length));
  }

  getGridOptions() {
    return { columns: 12, min_columns: 6, min_rows: 2 };
  }

  _fetched() {
    this._dirty = false;
    this._layout = null;
    this._shown = null;
  }

  _visible() {
    const lab = this._config?.lab;
    return (this._resources ?? []).filter((resource) => lab === undefined || resource.lab === lab);
  }

  /* The state objects the tiles show; null when nothing relevant changed. */
  _relevant() {
    const states = this._hass.states;
    // Translations load after the first states: a new localize shows translated states.
    const shown = [this._hass.localize, this._hass.locale?.language];
    let missing = false;
    for (const resource of this._visible()) {
      for (const key of ["state", "holders", "power"]) {
        const entityId = resource.entities?.[key];
        const stateObj = entityId ? states[entityId] : undefined;
        if (entityId && (stateObj === undefined || stateObj.state === "unavailable")) missing = true;
        shown.push(stateObj);
      }
    }
    if (missing) this._dirty = true;
    else if (this._dirty) {
      // A resource's entities came back (its lab was reloaded): labels may have changed.
      this._dirty = false;
      this._fetch();
    }
    if (sameObjects(this._shown, shown)) return null;
    this._shown = shown;
    return shown;
  }

  _render() {
    if (!this._config) return;
    const root = this.shadowRoot;
    if (this._error !== null || !this._hass || this._resources === null) {
      const text = this._error ?? "Loading…";
      this._layout = null;
      this._shown = null;
      root.innerHTML = this._frame(
        `<div class="message${this._error !== null ? " error" : ""}">${escape(text)}</div>`,
      );
      return;
    }
    if (this._layout === null) {
      const resources = this._visible();
      this._layout = layout(resources, this._config);
      this._shown = null;
      root.innerHTML = this._frame(
        resources.length ? this._grid(this._layout) : `<div class="message">No labpower resources.</div>`,
      );
    }
    this._updateSavings(root.querySelector(".savings"));
    if (this._relevant() === null) return;
    for (const tile of root.querySelectorAll(".tile")) this._update(tile);
  }

  _updateSavings(element) {
    if (!element) return;
    const lab = this._config.lab;
    const text = this._savingsText(lab === undefined ? undefined : [lab]).join("\n");
    if (element.textContent !== text) element.textContent = text;
    element.hidden = !text;
  }

  _frame(body) {
    const title = this._config.title;
    const header = title ? ` header="${escape(title)}"` : "";
    const savings = this._config.savings === false ? "" : `<div class="savings" hidden></div>`;
    return `<style>${STYLE}</style><ha-card${header}><div class="content${title ? "" : " no-header"}">${savings}${body}</div></ha-card>`;
  }

  _grid({ grouped, groups }) {
    const racks = groups
      .map((group) => {
        const name = group.title ? `<h2 class="rack-name">${escape(group.title)}</h2>` : "";
        const slots = group.slots
          .map((slot) =>
            slot.empty !== undefined
              ? `<div class="empty" aria-hidden="true">${escape(slot.empty)}</div>`
              : `<button class="tile" type="button" data-resource="${escape(slot.resource.name)}">` +
                `<span class="name">${escape(slot.resource.name)}</span>` +
                `<span class="meta"><span class="state"></span>` +
                `<span class="holders"><ha-icon icon="mdi:account"></ha-icon><span class="count"></span></span></span>` +
                `<span class="who"></span>` +
                `</button>`,
          )
          .join("");
        return `<section class="rack" data-group="${escape(group.key)}">${name}<div class="slots">${slots}</div></section>`;
      })
      .join("");
    return `<div class="lab${grouped ? "" : " single"}">${racks}</div>`;
  }

  _resource(name) {
    return this._resources?.find((resource) => resource.name === name);
  }

  _update(tile) {
    const resource = this._resource(tile.dataset.resource);
    if (!resource) return;
    const { state, stateText, reason } = stateInfo(this._hass, resource);
    const { holders, tokens } = holdersInfo(this._hass, resource);
    const now = Date.now();
    tile.dataset.state = state;
    tile.dataset.holders = String(holders);
    tile.querySelector(".state").textContent = stateText;
    const count = tile.querySelector(".holders");
    count.dataset.count = String(holders);
    count.querySelector(".count").textContent = String(holders);
    const holdersText = `${holders} ${holders === 1 ? "holder" : "holders"}`;
    count.title = holdersText;
    const first = tokens[0];
    const firstLeft = first ? timeLeft(first.expires, now) : null;
    tile.querySelector(".who").textContent = first
      ? `${first.holder}${firstLeft === null ? "" : ` · ${firstLeft} left`}${tokens.length > 1 ? ` +${tokens.length - 1}` : ""}`
      : "";
    tile.title = [
      `${resource.name}: ${stateText}`,
      reason,
      tokens.length ? `${holdersText}:` : holdersText,
      ...tokens.map((token) => `• ${describeToken(token, now)}`),
    ]
      .filter(Boolean)
      .join("\n");
    tile.setAttribute("aria-label", `${resource.name}, ${stateText}, ${holdersText}`);
  }

  _clicked(ev) {
    const tile = ev.composedPath().find((node) => node.classList?.contains("tile"));
    if (!tile) return;
    const resource = this._resource(tile.dataset.resource);
    const entityId = resource?.entities?.power ?? resource?.entities?.state;
    if (!entityId) return;
    const event = new Event("hass-more-info", { bubbles: true, composed: true });
    event.detail = { entityId };
    this.dispatchEvent(event);
  }
}

/* The form fields of the visual editor, in HA's ha-form schema. */
export const EDITOR_SCHEMA = [
  { name: "title", selector: { text: {} } },
  { name: "lab", selector: { text: {} } },
  { name: "group_by", selector: { text: {} } },
  { name: "savings", selector: { boolean: {} } },
];
const EDITOR_LABELS = {
  title: "Title",
  lab: "Lab (empty: every lab)",
  group_by: "Group by label prefix (e.g. rack; empty: one group)",
  savings: "Show the savings (cost avoided today, this week, this month)",
};

/* The card's visual editor (HA shows it in the card dialog): title, lab and grouping. */
class LabpowerRackCardEditor extends HTMLElement {
  constructor() {
    super();
    this._config = {};
    this._hass = null;
    this._form = null;
  }

  setConfig(config) {
    this._config = { ...config };
    this._render();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._form) this._form.hass = hass;
  }

  connectedCallback() {
    this._render();
  }

  /* ha-form is part of the frontend's editor chunk: load it through a card of HA's own. */
  async _ensureForm() {
    if (customElements.get("ha-form")) return;
    const helpers = await window.loadCardHelpers?.();
    const card = await helpers?.createCardElement({ type: "entities", entities: [] });
    await card?.constructor?.getConfigElement?.();
    await customElements.whenDefined("ha-form");
  }

  async _render() {
    if (!this.isConnected) return;
    await this._ensureForm();
    if (!this._form) {
      this._form = document.createElement("ha-form");
      this._form.schema = EDITOR_SCHEMA;
      this._form.computeLabel = (field) => EDITOR_LABELS[field.name] ?? field.name;
      this._form.addEventListener("value-changed", (ev) => this._changed(ev));
      this.appendChild(this._form);
    }
    this._form.hass = this._hass;
    const groupBy = this._config.group_by;
    this._form.data = {
      title: this._config.title ?? "",
      lab: this._config.lab ?? "",
      group_by: Array.isArray(groupBy) ? groupBy.join(", ") : (groupBy ?? ""),
      savings: this._config.savings !== false, // shown unless turned off
    };
  }

  _changed(ev) {
    ev.stopPropagation();
    const value = ev.detail.value;
    const config = { ...this._config };
    for (const key of ["title", "lab"]) {
      const text = String(value[key] ?? "").trim();
      if (text) config[key] = text;
      else delete config[key];
    }
    const prefixes = String(value.group_by ?? "")
      .split(",")
      .map((p) => p.trim())
      .filter(Boolean);
    if (prefixes.length === 0) delete config.group_by;
    else config.group_by = prefixes.length === 1 ? prefixes[0] : prefixes;
    if (value.savings === false) config.savings = false;
    else delete config.savings; // the default: shown
    this._config = config;
    const changed = new Event("config-changed", { bubbles: true, composed: true });
    changed.detail = { config };
    this.dispatchEvent(changed);
  }
}


/*
 * labpower overview card: who holds what, until when, with the actions a user may take.
 *
 *   type: custom:labpower-overview-card
 *   title: Lab overview     # optional
 *   lab: Demo lab           # optional: only this lab (else a filter offers every lab)
 *   savings: false          # optional: no savings line (cost avoided today, week, month)
 *
 * A row per resource: state (and why), holders with time left, energy today (the energy
 * sensor's change since midnight, from the recorder's statistics), and Take a hold /
 * Renew (mine) / Release (mine) / Force off (administrators, confirmed). Filters: lab,
 * label, mine. Tokens come from labpower/resources (ids only of the user's own tokens,
 * or all for an administrator), followed through labpower/subscribe_resources.
 */
const OVERVIEW = "labpower-overview-card";
const CONFIRM_MS = 5000;
const ENERGY_MS = 300000;

/* The resources a filter keeps: {lab, label, mine} (empty: any). */
export function filterResources(resources, filter) {
  return resources.filter(
    (r) =>
      (!filter.lab || r.lab === filter.lab) &&
      (!filter.label || (r.labels ?? []).includes(filter.label)) &&
      (!filter.mine || (r.tokens ?? []).some((t) => t.mine)),
  );
}

/*
 * The overview's columns, in order, and nothing about them anywhere else: a column is one
 * entry here. Each has its header (title), its width on a wide card (a CSS grid track:
 * every row is a subgrid of the header's tracks, so the columns line up), its alignment,
 * where it goes on a narrow card (a phone, 390 px, where rows stack: the cells of "start"
 * and "end" share the first line; any other takes a line of its own), whether a narrow card
 * writes its title before it (label, default true), the entities of a resource it reads (the card redraws when one
 * changes) and its cell: HTML from the row (see _row: resource, state, stateText, reason,
 * tokens, now, energy, actions, hass).
 */
export const OVERVIEW_COLUMNS = [
  {
    key: "name",
    title: "Resource",
    width: "fit-content(200px)",
    narrow: "start",
    label: false,
    cell: (row) =>
      `<span class="name">${escape(row.resource.name)}</span><span class="reason">${escape(row.resource.lab)}</span>`,
  },
  {
    key: "state",
    title: "State",
    width: "max-content",
    narrow: "end",
    label: false,
    entities: ["state"],
    cell: (row) =>
      `<span class="state">${escape(row.stateText)}</span>${row.reason ? `<span class="reason">${escape(row.reason)}</span>` : ""}`,
  },
  {
    key: "tokens",
    title: "Holders",
    width: "minmax(140px, 1fr)",
    label: false,
    entities: ["holders"],
    cell: (row) =>
      (row.tokens.length
        ? row.tokens
            .map(
              (t) =>
                `<div class="${t.mine ? "mine" : ""}" title="since ${escape(t.since ?? "")}">${escape(describeToken(t, row.now))}${t.mine ? " · mine" : ""}</div>`,
            )
            .join("")
        : `<div class="nobody">nobody</div>`) +
      // Who waits in the queue for it (see the acquire action's wait: queue).
      (row.resource.queue ?? [])
        .map(
          (q) =>
            `<div class="queued${q.mine ? " mine" : ""}">${escape(`waiting #${q.position}: ${q.holder}${q.exclusive ? " (exclusive)" : ""}`)}${q.mine ? " · mine" : ""}</div>`,
        )
        .join(""),
  },
  {
    key: "energy",
    title: "Energy today",
    width: "fit-content(80px)",
    align: "end",
    entities: ["energy"],
    cell: (row) => (row.energy === undefined || row.energy === null ? "–" : `${row.energy.toFixed(2)} kWh`),
  },
  {
    key: "actions",
    title: "",
    width: "fit-content(230px)",
    align: "end",
    label: false,
    cell: (row) => `<div class="actions">${row.actions.join("")}</div>`,
  },
];

/* The columns' share of the style: the grid's tracks, and where each cell goes when narrow. */
function columnStyle(columns) {
  const narrow = columns
    .map((c) => {
      const place = c.narrow === "start" ? "1" : c.narrow === "end" ? "2" : "1 / -1";
      const align = c.narrow === "end" || (!c.narrow && c.label === false && c.align === "end") ? "end" : "start";
      return `.cell[data-col="${c.key}"] { grid-column: ${place}; text-align: ${align}; }`;
    })
    .join("\n    ");
  const aligned = columns
    .filter((c) => c.align === "end")
    .map((c) => `.head [data-col="${c.key}"], .cell[data-col="${c.key}"] { text-align: end; }`)
    .join("\n  ");
  return `
  .rows { grid-template-columns: ${columns.map((c) => c.width).join(" ")}; }
  ${aligned}
  @container overview (max-width: 560px) {
    .rows { grid-template-columns: minmax(0, 1fr); }
    .head { display: none; }
    .row { grid-template-columns: minmax(0, 1fr) auto; }
    ${narrow}
    .cell[data-label]::before { content: attr(data-label) ": "; color: var(--secondary-text-color); }
  }`;
}

const OVERVIEW_ENTITIES = [...new Set(OVERVIEW_COLUMNS.flatMap((c) => c.entities ?? []))];

const OVERVIEW_STYLE = `
  ${STYLE}
  .filters { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center; margin-bottom: 8px; }
  .filters select {
    font: inherit; color: var(--primary-text-color); background: var(--lp-surface);
    border: 1px solid var(--divider-color, rgba(0,0,0,0.12)); border-radius: 6px; padding: 4px 6px;
  }
  .filters label { display: inline-flex; gap: 4px; align-items: center; color: var(--secondary-text-color); }
  .overview { container: overview / inline-size; }
  /* One grid for the header and every row (each row a subgrid of its tracks). */
  .rows { display: grid; column-gap: 12px; row-gap: 6px; align-items: center; }
  .head, .row {
    grid-column: 1 / -1; display: grid; grid-template-columns: subgrid; align-items: center;
    row-gap: 4px; padding: 0 10px; border-left: 5px solid transparent;
  }
  .head { font-size: 0.75rem; font-weight: 500; letter-spacing: 0.04em; text-transform: uppercase; color: var(--secondary-text-color); }
  .row {
    --lp-color: var(--lp-unknown);
    padding-block: 8px; border-radius: 8px; border-left-color: var(--lp-color);
    background: color-mix(in srgb, var(--lp-color) 12%, var(--lp-surface));
  }
  .row[data-state="off"] { --lp-color: var(--lp-off); }
  .row[data-state="starting"] { --lp-color: var(--lp-starting); }
  .row[data-state="available"] { --lp-color: var(--lp-available); }
  .row[data-state="stopping"] { --lp-color: var(--lp-stopping); }
  .row[data-state="fault"] { --lp-color: var(--lp-fault); }
  .row[data-state="unknown"] { border-left-style: dashed; }
  .cell { min-width: 0; }
  .cell .name { display: block; }
  .row .reason { display: block; font-size: 0.8rem; color: var(--secondary-text-color); }
  .cell[data-col="tokens"] { font-size: 0.9rem; color: var(--primary-text-color); }
  .cell[data-col="tokens"] div { overflow-wrap: anywhere; }
  .cell[data-col="tokens"] .mine { font-weight: 500; }
  .cell[data-col="tokens"] .nobody { color: var(--secondary-text-color); }
  .cell[data-col="energy"] { font-size: 0.9rem; color: var(--secondary-text-color); white-space: nowrap; }
  .cell[data-col="tokens"] .queued { color: var(--secondary-text-color); font-style: italic; }
  .actions { display: flex; flex-wrap: wrap; gap: 4px; justify-content: flex-end; }
  .actions button {
    font: inherit; font-size: 0.85rem; cursor: pointer; border-radius: 6px; padding: 4px 8px;
    border: 1px solid var(--primary-color); background: transparent; color: var(--primary-color);
  }
  .actions button.danger { border-color: var(--error-color, #db4437); color: var(--error-color, #db4437); }
  .actions button.confirm { background: var(--error-color, #db4437); color: var(--text-primary-color, #fff); }
  .actions button:disabled { opacity: 0.5; cursor: default; }
  ${columnStyle(OVERVIEW_COLUMNS)}
`;

class LabpowerOverviewCard extends LabpowerResourcesCard {
  constructor() {
    super();
    this._filter = { lab: "", label: "", mine: false };
    this._energy = {}; // energy sensor -> kWh today, asked once the resources are known
    this._energyAsked = false;
    this._confirming = null; // resource whose Force off waits for a second click
    this._busy = false;
    this._shown = null; // the state objects (and localize) last rendered
    this._drawnTitle = null; // the card's frame (title, filters, rows) drawn with this title
    this._filterKey = null; // the filters' options drawn
    this.attachShadow({ mode: "open" });
    this.shadowRoot.addEventListener("click", (ev) => this._clicked(ev));
    this.shadowRoot.addEventListener("change", (ev) => this._filtered(ev));
  }

  setConfig(config) {
    if (!config || typeof config !== "object") throw new Error("Invalid configuration");
    if (config.lab !== undefined && typeof config.lab !== "string")
      throw new Error("lab must be the name of a lab");
    this._config = { ...config };
    this._filter.lab = config.lab ?? "";
    this._redraw();
  }

  static getStubConfig() {
    return {};
  }

  getCardSize() {
    return 2 + (this._resources?.length ?? 2);
  }

  getGridOptions() {
    return { columns: 12, min_columns: 6, min_rows: 3 };
  }

  connectedCallback() {
    this._tick = setInterval(() => this._redraw(), TICK_MS); // time left
    this._energyTimer = setInterval(() => this._fetchEnergy(), ENERGY_MS);
    this._startSavings();
  }

  disconnectedCallback() {
    super.disconnectedCallback();
    clearInterval(this._tick);
    clearInterval(this._energyTimer);
    this._stopSavings();
  }

  _savingsFetched() {
    this._redraw();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._entitiesChanged(hass)) this._fetch();
    else this._render();
  }

  _fetched() {
    this._shown = null;
    if (this._resources === null) return;
    if (!this._energyAsked) {
      this._energyAsked = true;
      this._fetchEnergy();
    }
  }

  async _fetchEnergy() {
    if (!this._hass || !this._resources) return;
    for (const resource of this._resources) {
      const id = resource.entities?.energy;
      if (!id) continue;
      try {
        const result = await this._hass.callWS({
          type: "recorder/statistic_during_period",
          statistic_id: id,
          calendar: { period: "day" },
          types: ["change"],
        });
        this._energy[id] = result?.change ?? null;
      } catch (_err) {
        this._energy[id] = null; // no recorder: no energy column value
      }
    }
    this._redraw();
  }

  _mine(resource) {
    return (resource.tokens ?? []).filter((t) => t.mine && t.token);
  }

  /* Draw anew even if no state object changed (new tokens, a filter, time left). */
  _redraw() {
    this._shown = null;
    this._render();
  }

  /*
   * The state objects the rows show (and localize); null when none changed, so that a state
   * change elsewhere in HA does not redraw the card (and close an open <select>).
   */
  _relevant() {
    const states = this._hass.states;
    const shown = [this._hass.localize, this._hass.locale?.language, this._hass.user];
    for (const resource of this._resources)
      for (const key of OVERVIEW_ENTITIES) shown.push(states[resource.entities?.[key]]);
    for (const id of this._savingsOf()) shown.push(states[id]);
    if (sameObjects(this._shown, shown)) return null;
    this._shown = shown;
    return shown;
  }

  /*
   * The card, the filters and the rows are drawn apart: a state change redraws the rows only,
   * so an open filter (a <select> showing its options) stays open and keeps its value.
   */
  _render() {
    if (!this._config) return;
    const root = this.shadowRoot;
    const title = this._config.title;
    if (this._error !== null || !this._hass || this._resources === null) {
      const text = this._error ?? "Loading…";
      this._shown = null;
      this._drawnTitle = null;
      root.innerHTML = this._card(`<div class="message${this._error !== null ? " error" : ""}">${escape(text)}</div>`);
      return;
    }
    if (this._drawnTitle !== (title ?? "")) {
      this._drawnTitle = title ?? "";
      this._filterKey = null;
      this._shown = null;
      root.innerHTML = this._card(`<div class="savings-lines"></div><div class="filters"></div><div class="overview"><div class="rows" role="table"></div></div>`);
    }
    this._drawFilters(root.querySelector(".filters"));
    if (this._relevant() === null) return;
    const savings = this._config.savings === false ? [] : this._savingsText(this._filter.lab ? [this._filter.lab] : undefined);
    root.querySelector(".savings-lines").innerHTML = savings.map((line) => `<div class="savings">${escape(line)}</div>`).join("");
    // Redrawn after an action or new tokens: the focus goes back to the same button.
    const focused = root.activeElement?.closest?.(".rows") ? root.activeElement.dataset?.focus : null;
    root.querySelector(".rows").innerHTML = this._header() + this._rows();
    if (focused) root.querySelector(`.rows [data-focus="${CSS.escape(focused)}"]`)?.focus();
  }

  _card(body) {
    const title = this._config.title;
    return (
      `<style>${OVERVIEW_STYLE}</style><ha-card${title ? ` header="${escape(title)}"` : ""}>` +
      `<div class="content${title ? "" : " no-header"}">${body}</div></ha-card>`
    );
  }

  /* The filters' options are drawn again only when they change; their values are set. */
  _drawFilters(filters) {
    const labs = [...new Set(this._resources.map((r) => r.lab))].sort(collator.compare);
    const labels = [...new Set(this._resources.flatMap((r) => r.labels ?? []))].sort(collator.compare);
    const key = JSON.stringify([this._config.lab ?? null, labs, labels]);
    if (key !== this._filterKey) {
      this._filterKey = key;
      const options = (values, any) =>
        `<option value="">${any}</option>` + values.map((v) => `<option value="${escape(v)}">${escape(v)}</option>`).join("");
      const lab = this._config.lab
        ? ""
        : `<label>Lab <select data-filter="lab">${options(labs, "every lab")}</select></label>`;
      filters.innerHTML =
        lab +
        `<label>Label <select data-filter="label">${options(labels, "any")}</select></label>` +
        `<label><input type="checkbox" data-filter="mine"> Mine</label>`;
    }
    for (const input of filters.querySelectorAll("[data-filter]")) {
      const value = this._filter[input.dataset.filter];
      if (input.type === "checkbox") input.checked = Boolean(value);
      else if (input.value !== value) input.value = value;
    }
  }

  _header() {
    return (
      `<div class="head" role="row">` +
      OVERVIEW_COLUMNS.map((c) => `<div role="columnheader" data-col="${c.key}">${escape(c.title)}</div>`).join("") +
      `</div>`
    );
  }

  _rows() {
    const admin = Boolean(this._hass.user?.is_admin);
    const now = Date.now();
    const shown = filterResources(this._resources, this._filter).sort((a, b) => collator.compare(a.name, b.name));
    if (!shown.length) return `<div class="message">No resources match.</div>`;
    return shown
      .map((resource) => {
        const row = this._row(resource, admin, now);
        const cells = OVERVIEW_COLUMNS.map((c) => {
          const label = c.label === false || !c.title ? "" : ` data-label="${escape(c.title)}"`;
          return `<div class="cell" role="cell" data-col="${c.key}"${label}>${c.cell(row)}</div>`;
        });
        return `<div class="row" role="row" data-resource="${escape(resource.name)}" data-state="${row.state}">${cells.join("")}</div>`;
      })
      .join("");
  }

  /* What the columns' cells read of one resource. */
  _row(resource, admin, now) {
    const { state, stateText, reason } = stateInfo(this._hass, resource);
    const mine = this._mine(resource);
    const name = escape(resource.name);
    const button = (action, text, extra = "") =>
      `<button type="button" data-action="${action}" data-resource="${name}" data-focus="${action}:${name}"${extra}>${text}</button>`;
    const actions = [];
    if (!mine.some((t) => t.kind === "hold") && resource.entities?.power) actions.push(button("hold", "Take a hold"));
    if (mine.some((t) => t.expires)) actions.push(button("renew", "Renew"));
    if (mine.length) actions.push(button("release", "Release"));
    if (admin && state !== "off")
      actions.push(
        this._confirming === resource.name
          ? button("force_off", "Confirm force off", ' class="danger confirm"')
          : button("force_off", "Force off", ' class="danger"'),
      );
    return {
      resource,
      state,
      stateText,
      reason,
      // From labpower/resources, fetched again whenever a Holders sensor changes.
      tokens: resource.tokens ?? [],
      now,
      energy: this._energy[resource.entities?.energy],
      actions,
      hass: this._hass,
    };
  }

  _filtered(ev) {
    const key = ev.target?.dataset?.filter;
    if (!key) return;
    this._filter[key] = key === "mine" ? ev.target.checked : ev.target.value;
    this._redraw();
  }

  async _clicked(ev) {
    const button = ev.composedPath().find((node) => node.dataset?.action);
    if (!button || this._busy) return;
    const resource = this._resources?.find((r) => r.name === button.dataset.resource);
    if (!resource) return;
    const action = button.dataset.action;
    if (action === "force_off" && this._confirming !== resource.name) {
      this._confirming = resource.name;
      clearTimeout(this._confirmTimer);
      this._confirmTimer = setTimeout(() => {
        this._confirming = null;
        this._redraw();
      }, CONFIRM_MS);
      this._redraw();
      return;
    }
    this._confirming = null;
    this._busy = true;
    try {
      const mine = this._mine(resource);
      if (action === "hold") await this._hass.callService("switch", "turn_on", { entity_id: resource.entities.power });
      else if (action === "renew")
        for (const t of mine.filter((t) => t.expires)) await this._hass.callService("labpower", "renew", { token: t.token });
      else if (action === "release")
        await this._hass.callService("labpower", "release", { token: mine.map((t) => t.token) });
      else if (action === "force_off") await this._hass.callService("labpower", "force_off", { resource: [resource.name] });
    } catch (err) {
      const event = new Event("hass-notification", { bubbles: true, composed: true });
      event.detail = { message: err?.message ?? String(err) };
      this.dispatchEvent(event);
    } finally {
      this._busy = false;
    }
    this._fetch();
  }
}

const registerCard = () => {
  if (!window.customElements.get(CARD)) window.customElements.define(CARD, LabpowerRackCard);
  if (!window.customElements.get(OVERVIEW))
    window.customElements.define(OVERVIEW, LabpowerOverviewCard);
  if (!window.customElements.get(EDITOR))
    window.customElements.define(EDITOR, LabpowerRackCardEditor);
};
registerCard();
// The frontend loads this module while it boots, and may then put its scoped custom element
// registry (a polyfill) in window.customElements: a card defined only in the browser's own
// registry would stay unknown to it. Define it there too once the frontend's app is defined.
customElements.whenDefined("home-assistant").then(registerCard);

window.customCards = window.customCards || [];
if (!window.customCards.some((card) => card.type === CARD)) {
  window.customCards.push({
    type: CARD,
    name: "labpower rack",
    description: "The lab at a glance: resources by rack, coloured by state, with their holders.",
    preview: true,
    documentationURL: "https://github.com/labpower/labpower#the-lab-at-a-glance-the-rack-card",
  });
}
if (!window.customCards.some((card) => card.type === OVERVIEW)) {
  window.customCards.push({
    type: OVERVIEW,
    name: "labpower overview",
    description: "Who holds what, until when: renew, release, force off or take a hold.",
    preview: false,
    documentationURL: "https://github.com/labpower/labpower#who-holds-what-the-overview-card",
  });
}
