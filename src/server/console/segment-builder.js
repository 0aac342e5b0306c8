// The Segment rules builder: a marketer picks conditions ("did event", "did not do event", "has profile
// property") instead of typing the rule JSON. It shows one level of all/any whose members are single conditions
// (a "did not" is `not` around one); any other tree is shown read-only, with its JSON editable behind
// "Edit as JSON", so nothing the rule language can say is lost or rewritten by opening it here.
import { api } from './api.js';
import { h, replace, uid } from './dom.js';

/** @typedef {'gte' | 'lte' | 'eq'} CountOp */
/** @typedef {'eq' | 'contains' | 'gt' | 'lt'} FilterOp */
/** @typedef {'eq' | 'neq' | 'contains' | 'notContains' | 'exists' | 'missing'} TraitOp */
/** @typedef {{ property: string, op: FilterOp, value: string }} Filter */
/** @typedef {{ kind: 'did' | 'didNot', event: string, countOp: CountOp, count: string, within: string, unit: string, filters: Filter[] }} EventCondition */
/** @typedef {{ kind: 'trait', trait: string, op: TraitOp, value: string }} TraitCondition */
/** One condition row, every value as typed (text), so a half-typed row survives a redraw. @typedef {EventCondition | TraitCondition} Condition */
/** @typedef {{ match: 'all' | 'any', conditions: Condition[] }} Conditions */
/**
 * A row problem found before saving: which condition (and filter), which control, and what to do.
 * @typedef {{ condition: number, control: 'event' | 'count' | 'within' | 'trait' | 'value' | 'filterProperty' | 'filterValue', filter?: number, message: string }} RowProblem
 */

const KINDS = [['did', 'did event'], ['didNot', 'did not do event'], ['trait', 'has profile property']];
const COUNT_OPS = [['gte', 'at least'], ['lte', 'at most'], ['eq', 'exactly']];
const UNITS = [['m', 'minutes'], ['h', 'hours'], ['d', 'days'], ['w', 'weeks']];
const FILTER_OPS = [['eq', 'equals'], ['contains', 'contains'], ['gt', 'greater than'], ['lt', 'less than']];
const TRAIT_OPS = [['eq', 'equals'], ['neq', 'does not equal'], ['contains', 'contains'], ['notContains', 'does not contain'], ['exists', 'exists'], ['missing', 'does not exist']];
/** Trait operators written as `not` around the positive one. */
const NEGATED = { neq: 'eq', notContains: 'contains' };
const WITHIN = /^(\d+(?:\.\d+)?)(m|h|d|w)$/;

/** @returns {Condition} */
export const emptyCondition = (kind = 'did') =>
  kind === 'trait' ? { kind: 'trait', trait: '', op: 'eq', value: '' } : { kind: /** @type {'did'} */ (kind), event: '', countOp: 'gte', count: '1', within: '', unit: 'd', filters: [] };

// Values. A value typed plainly as a number (5, -2, 12.5; not 007 or 1e3) is a JSON number and "true"/"false"
// are booleans, because stored properties keep their JSON types and 5 never equals "5". Wrapping a value in
// double quotes keeps it text ("02139"); a text that would otherwise read as a number is shown quoted.
const PLAIN_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;
const readsAsOther = (text) => PLAIN_NUMBER.test(text) || text === 'true' || text === 'false';
const isQuoted = (text) => text.length >= 2 && text.startsWith('"') && text.endsWith('"');

/** The rule value a typed text stands for. */
export function valueFromText(text) {
  if (isQuoted(text)) return text.slice(1, -1);
  if (PLAIN_NUMBER.test(text)) return Number(text);
  if (text === 'true' || text === 'false') return text === 'true';
  return text;
}

/** How a rule value is typed in the builder (the inverse of valueFromText). */
export function textFromValue(value) {
  if (typeof value !== 'string') return String(value);
  return readsAsOther(value) || isQuoted(value) ? `"${value}"` : value;
}

const isObject = (value) => Boolean(value) && typeof value === 'object' && !Array.isArray(value);
const onlyKeys = (value, allowed) => Object.keys(value).every((key) => allowed.includes(key));
const isScalar = (value) => ['string', 'number', 'boolean'].includes(typeof value);

/**
 * A rule tree as builder rows, or `{unsupported}` saying why the builder cannot show it. A bare condition (or a
 * `not` around one) shows as "all" of one row.
 * @returns {Conditions | { unsupported: string }}
 */
export function conditionsFromRules(rules) {
  if (!isObject(rules)) return { unsupported: 'the rules are not an object' };
  const keys = Object.keys(rules);
  const match = keys.length === 1 && (keys[0] === 'all' || keys[0] === 'any') ? keys[0] : undefined;
  const children = match ? rules[match] : [rules];
  if (!Array.isArray(children)) return { unsupported: `"${match}" does not hold a list of conditions` };
  /** @type {Condition[]} */
  const conditions = [];
  for (const [i, child] of children.entries()) {
    const condition = conditionFromRule(child);
    if (typeof condition === 'string') return { unsupported: `condition ${i + 1} ${condition}` };
    conditions.push(condition);
  }
  return { match: /** @type {'all' | 'any'} */ (match ?? 'all'), conditions };
}

/** @returns {Condition | string} the row, or why the builder cannot show this rule */
function conditionFromRule(rule) {
  if (!isObject(rule)) return 'is not an object';
  if ('all' in rule || 'any' in rule) return 'is a group of conditions inside a group';
  if ('not' in rule) {
    if (!onlyKeys(rule, ['not']) || !isObject(rule.not)) return 'has "not" beside other keys';
    const inner = rule.not;
    if ('event' in inner) {
      const count = inner.count;
      if (count !== undefined && !(isObject(count) && onlyKeys(count, ['gte']) && count.gte === 1)) return 'counts how often an event did not happen';
      const { count: _, ...rest } = inner;
      return eventRow(rest, 'didNot');
    }
    if ('trait' in inner) {
      const row = traitRow(inner);
      if (typeof row === 'string') return row;
      if (row.op !== 'eq' && row.op !== 'contains') return 'negates an "exists" test';
      return { ...row, op: row.op === 'eq' ? 'neq' : 'notContains' };
    }
    return 'is "not" around a group of conditions';
  }
  if ('event' in rule) return eventRow(rule, 'did');
  if ('trait' in rule) return traitRow(rule);
  return 'is neither an event nor a profile property condition';
}

/** @returns {EventCondition | string} */
function eventRow(rule, kind) {
  if (!onlyKeys(rule, ['event', 'count', 'within', 'where']) || typeof rule.event !== 'string') return 'has keys the builder does not show';
  let countOp = 'gte';
  let count = '1';
  if (rule.count !== undefined) {
    const ops = isObject(rule.count) ? Object.keys(rule.count) : [];
    if (ops.length !== 1 || !['gte', 'lte', 'eq'].includes(ops[0]) || typeof rule.count[ops[0]] !== 'number') return 'compares the count more than once';
    countOp = ops[0];
    count = String(rule.count[countOp]);
  }
  let within = '';
  let unit = 'd';
  if (rule.within !== undefined) {
    const m = WITHIN.exec(String(rule.within));
    if (!m) return `has a time window ("${rule.within}") other than minutes, hours, days or weeks`;
    [, within, unit] = m;
  }
  /** @type {Filter[]} */
  const filters = [];
  if (rule.where !== undefined) {
    if (!isObject(rule.where)) return 'has property filters that are not an object';
    for (const [property, filter] of Object.entries(rule.where)) {
      if (!isObject(filter) || !Object.keys(filter).length || !onlyKeys(filter, ['eq', 'contains', 'gt', 'lt'])) return `filters "${property}" in a way the builder does not show`;
      for (const [op, value] of Object.entries(filter)) {
        if (!isScalar(value)) return `compares "${property}" with a list or object`;
        filters.push({ property, op: /** @type {FilterOp} */ (op), value: op === 'gt' || op === 'lt' ? String(value) : textFromValue(value) });
      }
    }
  }
  return { kind, event: rule.event, countOp: /** @type {CountOp} */ (countOp), count, within, unit, filters };
}

/** @returns {TraitCondition | string} */
function traitRow(rule) {
  if (!onlyKeys(rule, ['trait', 'eq', 'contains', 'exists']) || typeof rule.trait !== 'string') return 'has keys the builder does not show';
  const ops = Object.keys(rule).filter((key) => key !== 'trait');
  if (ops.length > 1) return 'tests one profile property more than once';
  const [op] = ops;
  if (op === 'exists') {
    if (typeof rule.exists !== 'boolean') return 'has an "exists" that is not true or false';
    return { kind: 'trait', trait: rule.trait, op: rule.exists ? 'exists' : 'missing', value: '' };
  }
  if (op === undefined) return { kind: 'trait', trait: rule.trait, op: 'exists', value: '' };
  if (!isScalar(rule[op])) return `compares "${rule.trait}" with a list or object`;
  return { kind: 'trait', trait: rule.trait, op: /** @type {TraitOp} */ (op), value: textFromValue(rule[op]) };
}

/**
 * Builder rows as a rule tree, with the problems a marketer can fix before saving (an empty event name, "abc"
 * as a count, …). Counts and `gt`/`lt` values are numbers; a "did event" always states its count.
 * @param {Conditions} state
 * @returns {{ rules: { all: object[] } | { any: object[] }, problems: RowProblem[] }}
 */
export function rulesFromConditions({ match, conditions }) {
  /** @type {RowProblem[]} */
  const problems = [];
  const nodes = conditions.map((c, i) => {
    const problem = (control, message, filter) => problems.push({ condition: i, control, message, ...(filter === undefined ? {} : { filter }) });
    if (c.kind === 'trait') {
      const trait = c.trait.trim();
      if (!trait) problem('trait', 'Name the profile property, such as email or properties.plan.');
      if (c.op === 'exists' || c.op === 'missing') return { trait, exists: c.op === 'exists' };
      if (c.value === '') problem('value', 'Type the value to compare with.');
      const op = NEGATED[c.op] ?? c.op;
      const node = { trait, [op]: valueFromText(c.value) };
      return c.op in NEGATED ? { not: node } : node;
    }
    const event = c.event.trim();
    if (!event) problem('event', 'Name the event, such as Placed Order.');
    /** @type {Record<string, unknown>} */
    const node = { event };
    if (c.kind === 'did') {
      if (!/^\d+$/.test(c.count.trim())) problem('count', 'Type a whole number of times, such as 1.');
      node.count = { [c.countOp]: Number(c.count.trim()) };
    }
    const within = c.within.trim();
    if (within) {
      if (!/^\d+(\.\d+)?$/.test(within) || Number(within) <= 0) problem('within', 'Type a number above 0, or leave it empty for any time.');
      node.within = `${within}${c.unit}`;
    }
    /** @type {Record<string, Record<string, unknown>>} */
    const where = {};
    c.filters.forEach((f, j) => {
      const property = f.property.trim();
      if (!property) problem('filterProperty', 'Name the event property, such as Total.', j);
      let value;
      if (f.op === 'gt' || f.op === 'lt') {
        value = Number(f.value.trim());
        if (!PLAIN_NUMBER.test(f.value.trim())) problem('filterValue', 'Type a number, such as 50 or 12.5.', j);
      } else {
        value = valueFromText(f.value);
        if (f.value === '') problem('filterValue', 'Type the value to compare with.', j);
      }
      where[property] ??= {};
      if (f.op in where[property]) problem('filterValue', `“${property}” already has a “${FILTER_OPS.find(([op]) => op === f.op)[1]}” filter in this condition.`, j);
      where[property][f.op] = value;
    });
    if (c.filters.length) node.where = where;
    return c.kind === 'didNot' ? { not: node } : node;
  });
  return { rules: match === 'any' ? { any: nodes } : { all: nodes }, problems };
}

// The screen. Every control has a visible label; a hidden ", condition N" (", filter M") makes each accessible
// name unique, so a screen reader user (or a test) can tell condition 2's "Event name" from condition 1's.

/** A select of `[value, text]` pairs showing `value`. */
function choice(cls, pairs, value) {
  const select = /** @type {HTMLSelectElement} */ (h('select', { class: cls }, pairs.map(([v, text]) => h('option', { value: v, text }))));
  select.value = value;
  return select;
}

/** A labelled control: `label` shown, `suffix` read out only. */
function labelled(label, suffix, control, className = '') {
  control.id = uid('seg');
  return h('div', { class: `field ${className}`.trim() },
    h('label', { for: control.id }, label, h('span', { class: 'visually-hidden', text: suffix })),
    control,
  );
}

const textInput = (cls, value, attrs = {}) => h('input', { class: cls, value, autocomplete: 'off', spellcheck: 'false', ...attrs });

/** The event names the store has seen, most used first (GET /v1/admin/events). */
async function storeEventNames() {
  const { events } = await api('GET', '/events');
  return events.map((e) => e.name);
}

/**
 * Property names with how many of the newest `sampled` events (or profiles) carry each, most carried first.
 * @typedef {{ sampled: number, keys: { key: string, count: number }[] }} PropertyKeys
 */

/** @returns {Promise<PropertyKeys>} the keys of the newest events named `name` (GET /v1/admin/events/properties) */
const storeEventProperties = (name) => api('GET', `/events/properties?name=${encodeURIComponent(name)}`);
/** @returns {Promise<PropertyKeys>} the profile properties a rule can name (GET /v1/admin/profiles/properties) */
const storeProfileProperties = () => api('GET', '/profiles/properties');

/** How long typing in Event name pauses before its property names are asked for. */
const EVENT_PROPERTIES_DELAY_MS = 300;

/** Datalist options for `keys`; each says how common it is (browsers show the label beside the value). */
const keyOptions = ({ sampled, keys }, what) =>
  keys.map(({ key, count }) => h('option', { value: key, label: `on ${count.toLocaleString()} of the newest ${sampled.toLocaleString()} ${what}` }));

/**
 * Wire the builder inside `root` (the `Segment rules` fieldset of index.html). Returns what the audience form
 * needs: load a rule tree, read it back (or the problems to fix), find the control a server issue names, focus.
 * Suggestions come from the store: Event name from the events it has seen, an event's filter Property from the
 * keys its newest events of that name carry, Profile property from the keys its newest profiles carry (the fixed
 * list in index.html stays when they cannot be read). They are suggestions only: any name can be typed.
 * @param {Element} root
 * @param {{
 *   eventNames?: () => Promise<string[]>,
 *   eventProperties?: (name: string) => Promise<PropertyKeys>,
 *   profileProperties?: () => Promise<PropertyKeys>,
 *   eventPropertiesDelayMs?: number,
 * }} [options] where the suggestions come from, and how long typing pauses before an event's properties are read
 */
export function createSegmentBuilder(root, {
  eventNames = storeEventNames, eventProperties = storeEventProperties, profileProperties = storeProfileProperties,
  eventPropertiesDelayMs = EVENT_PROPERTIES_DELAY_MS,
} = {}) {
  const $ = (selector) => root.querySelector(selector);
  const builder = $('.segment-builder');
  const list = $('.conditions');
  const matchSelect = $('.segment-match');
  const jsonView = $('.segment-json-view');
  const advanced = $('.segment-advanced');
  const textarea = $('.segment-json');
  /** 'builder': the rows are the rules; 'json': the textarea is (a tree the rows cannot show, or Edit as JSON open). */
  let mode = 'builder';

  /** @returns {Conditions} */
  function readRows() {
    const conditions = [...list.children].map((row) => {
      const get = (cls) => row.querySelector(`.${cls}`).value;
      const kind = get('c-kind');
      if (kind === 'trait') return /** @type {Condition} */ ({ kind, trait: get('c-trait'), op: get('c-trait-op'), value: get('c-value') });
      const filters = [...row.querySelectorAll('.filter')].map((f) => ({
        property: f.querySelector('.f-property').value,
        op: f.querySelector('.f-op').value,
        value: f.querySelector('.f-value').value,
      }));
      return /** @type {Condition} */ ({ kind, event: get('c-event'), countOp: get('c-count-op'), count: get('c-count'), within: get('c-within'), unit: get('c-unit'), filters });
    });
    return { match: matchSelect.value, conditions };
  }

  /** Draw `state`'s rows (numbered afresh), keeping nothing from before. */
  function render(state) {
    matchSelect.value = state.match;
    replace(list, state.conditions.map((c, i) => conditionRow(c, i)));
  }

  /** Apply a structural change (add or remove a row or filter) to the typed state and redraw. */
  function change(edit) {
    const state = readRows();
    edit(state);
    render(state);
  }

  function conditionRow(c, i) {
    const n = i + 1;
    const suffix = `, condition ${n}`;
    // This row's event's property names, for its filters' Property inputs.
    const propertyList = h('datalist', { id: uid('seg-event-properties') });
    const event = c.kind === 'trait' ? emptyCondition('did') : c;
    const trait = c.kind === 'trait' ? c : emptyCondition('trait');
    const kind = choice('c-kind', KINDS, c.kind);
    const headingId = uid('seg-condition');

    const filters = h('ul', { class: 'filters' }, event.filters.map((f, j) => {
      const filterSuffix = `${suffix}, filter ${j + 1}`;
      return h('li', { class: 'filter' },
        labelled('Property', filterSuffix, textInput('f-property', f.property, { list: propertyList.id, placeholder: 'Total' }), 'grow'),
        labelled('Operator', filterSuffix, choice('f-op', FILTER_OPS, f.op)),
        labelled('Value', filterSuffix, textInput('f-value', f.value), 'grow'),
        h('button', { type: 'button', class: 'quiet', text: 'Remove filter', 'aria-label': `Remove filter ${j + 1} of condition ${n}`, onclick: () => {
          change((s) => /** @type {any} */ (s.conditions[i]).filters.splice(j, 1));
          focusIn(i, '.add-filter');
        } }),
      );
    }));

    const count = h('div', { class: 'inline count-part' },
      labelled('How often', suffix, choice('c-count-op', COUNT_OPS, event.countOp)),
      labelled('Times', suffix, textInput('c-count', event.count, { inputmode: 'numeric', size: 4 }), 'narrow'),
    );
    const eventInput = textInput('c-event', event.event, { list: 'segment-events', placeholder: 'Placed Order' });
    const unseen = h('p', { class: 'hint event-unseen', id: uid('seg-unseen'), hidden: true });
    eventInput.setAttribute('aria-describedby', unseen.id);
    eventInput.addEventListener('input', () => {
      explainUnseen(eventInput, unseen);
      suggestEventProperties(eventInput, propertyList, eventPropertiesDelayMs);
    });
    explainUnseen(eventInput, unseen);
    suggestEventProperties(eventInput, propertyList, 0);
    const eventPart = h('div', { class: 'event-part' },
      h('div', { class: 'inline' },
        labelled('Event name', suffix, eventInput, 'grow'),
        count,
        labelled('Within the last', suffix, textInput('c-within', event.within, { inputmode: 'decimal', size: 4, placeholder: 'any time' }), 'narrow'),
        labelled('Unit', suffix, choice('c-unit', UNITS, event.unit)),
      ),
      unseen,
      propertyList,
      event.filters.length ? h('p', { class: 'hint', text: 'Counting only the events whose properties match:' }) : null,
      filters,
      h('button', { type: 'button', class: 'add-filter', text: 'Add filter', 'aria-label': `Add filter to condition ${n}`, onclick: () => {
        change((s) => {
          const target = /** @type {any} */ (s.conditions[i]);
          target.filters.push({ property: '', op: 'eq', value: '' });
        });
        const added = list.children[i].querySelectorAll('.f-property');
        /** @type {HTMLElement} */ (added[added.length - 1]).focus();
      } }),
    );
    const traitValue = labelled('Value', suffix, textInput('c-value', trait.value), 'grow');
    const traitOp = choice('c-trait-op', TRAIT_OPS, trait.op);
    const traitPart = h('div', { class: 'trait-part inline' },
      labelled('Profile property', suffix, textInput('c-trait', trait.trait, { list: 'segment-traits', placeholder: 'email' }), 'grow'),
      labelled('Operator', suffix, traitOp),
      traitValue,
    );

    const show = () => {
      eventPart.hidden = kind.value === 'trait';
      traitPart.hidden = kind.value !== 'trait';
      // "did not do" means never (in the window): a count would read as "did fewer than".
      count.hidden = kind.value !== 'did';
      traitValue.hidden = traitOp.value === 'exists' || traitOp.value === 'missing';
    };
    kind.addEventListener('change', show);
    traitOp.addEventListener('change', show);
    show();

    return h('div', { class: 'condition', role: 'group', 'aria-labelledby': headingId },
      h('div', { class: 'condition-head' },
        h('h3', { id: headingId, text: `Condition ${n}` }),
        h('button', { type: 'button', class: 'quiet', text: 'Remove condition', 'aria-label': `Remove condition ${n}`, onclick: () => {
          change((s) => s.conditions.splice(i, 1));
          focusIn(Math.min(i, list.children.length - 1), '.c-kind', $('.add-condition'));
        } }),
      ),
      labelled('Condition type', suffix, kind),
      eventPart,
      traitPart,
    );
  }

  function focusIn(index, selector, fallback) {
    /** @type {HTMLElement} */ (list.children[index]?.querySelector(selector) ?? fallback)?.focus();
  }

  /** Show `rules` as JSON only: `why` the rows cannot show them, the tree read-only, the textarea behind Edit as JSON. */
  function showAsJson(text, why) {
    mode = 'json';
    textarea.value = text;
    $('.segment-json-notice').textContent = `These rules cannot be shown as conditions: ${why}. They are kept as they are; change them with Edit as JSON, or start over with conditions.`;
    $('.segment-json-pre').textContent = text;
    builder.hidden = true;
    jsonView.hidden = advanced.open;
  }

  function showBuilder(state) {
    mode = 'builder';
    render(state);
    builder.hidden = advanced.open;
    jsonView.hidden = true;
  }

  /** Put `rules` on screen: as rows when they fit, else as JSON. */
  function load(rules) {
    advanced.open = false;
    // Opening the form again reads the store again.
    eventPropertiesByName.clear();
    const state = conditionsFromRules(rules);
    if ('unsupported' in state) showAsJson(JSON.stringify(rules, null, 2), state.unsupported);
    else showBuilder(state);
    loadEventNames();
    loadProfileProperties();
  }

  $('.add-condition').addEventListener('click', () => {
    change((s) => s.conditions.push(emptyCondition()));
    focusIn(list.children.length - 1, '.c-event');
  });
  $('.segment-restart').addEventListener('click', () => {
    advanced.open = false;
    showBuilder({ match: 'all', conditions: [emptyCondition()] });
    focusIn(0, '.c-kind');
  });
  // Opening Edit as JSON hands the rules to the textarea; closing it hands them back to the rows when they fit.
  advanced.addEventListener('toggle', () => {
    if (advanced.open) {
      if (mode === 'builder') textarea.value = JSON.stringify(rulesFromConditions(readRows()).rules, null, 2);
      mode = 'json';
      builder.hidden = true;
      jsonView.hidden = true;
      return;
    }
    let rules;
    try {
      rules = JSON.parse(textarea.value);
    } catch (err) {
      return showAsJson(textarea.value, `they are not valid JSON (${err.message})`);
    }
    const state = conditionsFromRules(rules);
    if ('unsupported' in state) showAsJson(JSON.stringify(rules, null, 2), state.unsupported);
    else showBuilder(state);
  });

  /** The event names the store has seen; undefined until read (or when they cannot be). */
  let knownEvents;

  /**
   * An event name the store has never seen matches no one (a typo such as "Placed Ordr" would sync an empty list
   * without a word), so say so under Event name. It is a hint, not an error: an event may be set up before it is
   * first tracked.
   */
  function explainUnseen(input, note) {
    const name = input.value.trim();
    if (!knownEvents || !name || knownEvents.includes(name)) {
      note.hidden = true;
      note.textContent = '';
      return;
    }
    const sameLetters = knownEvents.find((known) => known.toLowerCase().replace(/\s+/g, ' ') === name.toLowerCase().replace(/\s+/g, ' '));
    note.textContent = sameLetters
      ? `The store has no “${name}” events; did you mean “${sameLetters}”? Event names are case-sensitive.`
      : `The store has no “${name}” events yet, so this condition matches no one until it does. Check the spelling against the suggestions.`;
    note.hidden = false;
  }

  /** Fill the event name suggestions with the events the store has seen. */
  async function loadEventNames() {
    try {
      knownEvents = await eventNames();
      replace(document.getElementById('segment-events'), knownEvents.map((name) => h('option', { value: name })));
      for (const row of list.children) explainUnseen(row.querySelector('.c-event'), row.querySelector('.event-unseen'));
    } catch {
      // Suggestions only: any event name can still be typed.
    }
  }

  /** Each event name's property names, asked once per load (a redraw of the rows asks again for none). */
  /** @type {Map<string, Promise<PropertyKeys>>} */
  const eventPropertiesByName = new Map();
  /** @type {WeakMap<Element, ReturnType<typeof setTimeout>>} */
  const pendingSuggestions = new WeakMap();

  /**
   * Fill `list` with the property names of the event `input` names, `delayMs` after the last change (so typing
   * "Placed Order" asks once, not per letter). An answer for a name no longer typed is dropped; a failed read
   * leaves the list empty (any property can still be typed).
   */
  function suggestEventProperties(input, list, delayMs) {
    clearTimeout(pendingSuggestions.get(list));
    const fill = async () => {
      const name = input.value.trim();
      if (!name) return replace(list);
      if (!eventPropertiesByName.has(name)) eventPropertiesByName.set(name, eventProperties(name));
      try {
        const keys = await /** @type {Promise<PropertyKeys>} */ (eventPropertiesByName.get(name));
        if (input.value.trim() === name) replace(list, keyOptions(keys, 'events'));
      } catch {
        eventPropertiesByName.delete(name);
        if (input.value.trim() === name) replace(list);
      }
    };
    if (delayMs > 0) pendingSuggestions.set(list, setTimeout(fill, delayMs));
    else fill();
  }

  /** Profile property suggests what the store's profiles carry; index.html's fixed list stays if it cannot be read. */
  async function loadProfileProperties() {
    try {
      const keys = await profileProperties();
      const list = document.getElementById('segment-traits');
      if (list && keys.keys.length) replace(list, keyOptions(keys, 'profiles with custom properties or a location'));
    } catch {
      // The fixed list of profile columns stays.
    }
  }

  /** The control of row `condition` that `part` names (see RowProblem), or the row itself. */
  function rowControl(condition, part, filter) {
    const row = list.children[condition];
    if (!row) return root;
    const filterRow = filter === undefined ? undefined : row.querySelectorAll('.filter')[filter];
    const selector = {
      event: '.c-event', count: '.c-count', within: '.c-within', trait: '.c-trait', value: '.c-value',
      filterProperty: '.f-property', filterValue: '.f-value',
    }[part];
    return (filterRow ?? row).querySelector(selector) ?? row;
  }

  return {
    load,
    /** @returns {{ rules?: unknown, problems: { control: Element, message: string }[] }} */
    read() {
      if (mode === 'json') {
        try {
          return { rules: JSON.parse(textarea.value), problems: [] };
        } catch (err) {
          return { problems: [{ control: advanced.open ? textarea : root, message: `not valid JSON: ${err.message}` }] };
        }
      }
      const state = readRows();
      if (!state.conditions.length) return { problems: [{ control: root, message: 'Add at least one condition.' }] };
      const { rules, problems } = rulesFromConditions(state);
      return { rules, problems: problems.map((p) => ({ control: rowControl(p.condition, p.control, p.filter), message: p.message })) };
    },
    /** The control a server issue's field names: `source.rules.all[1].count.gte` is condition 2's Times. */
    controlFor(field) {
      if (mode === 'json') return advanced.open ? textarea : root;
      const path = field.replace(/^source(\.rules)?/, '').split(/[.[\]]+/).filter(Boolean);
      if (path[0] !== 'all' && path[0] !== 'any') return root;
      if (!/^\d+$/.test(path[1] ?? '')) return root;
      const condition = Number(path[1]);
      const rest = path.slice(2);
      if (rest[0] === 'not') rest.shift();
      const row = list.children[condition];
      if (!row) return root;
      switch (rest[0]) {
        case 'event': return rowControl(condition, 'event');
        case 'count': return rowControl(condition, 'count');
        case 'within': return rowControl(condition, 'within');
        case 'trait': return rowControl(condition, 'trait');
        case 'eq': case 'contains': case 'exists': return rowControl(condition, 'value');
        case 'where': {
          // A property name may hold dots, so match the filters' names against the rest of the path.
          const named = rest.slice(1).join('.');
          const filters = [...row.querySelectorAll('.filter')];
          const j = filters.findIndex((f) => {
            const property = f.querySelector('.f-property').value.trim();
            return named === property || named.startsWith(`${property}.`);
          });
          return j < 0 ? row : rowControl(condition, 'filterValue', j);
        }
        default: return row;
      }
    },
    focus() {
      /** @type {HTMLElement} */ ((mode === 'json' ? $('.segment-advanced summary') : list.querySelector('input, select')) ?? $('.add-condition')).focus();
    },
  };
}
