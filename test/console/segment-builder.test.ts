// @vitest-environment happy-dom
// The console's Segment rules builder: rule trees to condition rows and back (exactly, for every tree the rows can
// show), typed values to the JSON types the store compares, trees it cannot show kept as JSON untouched, and the
// rows on screen (index.html's own markup) read back and named by server issues.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeEach, describe, expect, it } from 'vitest';
import { eventually } from '../support/wait-for.js';
// The console is plain JavaScript, type-checked on its own with its JSDoc (tsconfig.console.json); here it is untyped.
// @ts-expect-error TS7016: no declaration file for a console module
import { conditionsFromRules, createSegmentBuilder, rulesFromConditions, textFromValue, valueFromText } from '../../src/server/console/segment-builder.js';

const roundTrip = (rules: unknown) => {
  const state = conditionsFromRules(rules);
  if ('unsupported' in state) throw new Error(`unsupported: ${state.unsupported}`);
  return rulesFromConditions(state);
};

describe('rule tree ⇄ condition rows', () => {
  it.each([
    ['the demo segment (count, window, property filter, a "did not" without a count)', {
      all: [
        { event: 'Viewed Product', count: { gte: 2 }, within: '7d', where: { Categories: { contains: 'Shoes' } } },
        { not: { event: 'Placed Order', within: '7d' } },
      ],
    }],
    ['placed an order in 30 days and has an email', { all: [{ event: 'Placed Order', count: { gte: 1 }, within: '30d' }, { trait: 'email', contains: '@' }] }],
    ['any of: profile property tests of every kind', {
      any: [
        { trait: 'properties.plan', eq: 'gold' },
        { not: { trait: 'email', eq: 'a@example.com' } },
        { not: { trait: 'email', contains: '@test.' } },
        { trait: 'phone_number', exists: true },
        { trait: 'location.city', exists: false },
        { trait: 'properties.zip', eq: '02139' },
        { trait: 'properties.code', eq: '5' },
        { trait: 'properties.vip', eq: true },
        { trait: 'properties.tier', eq: 3 },
      ],
    }],
    ['filters on one property, numbers and quoted texts', {
      all: [{ event: 'Placed Order', count: { lte: 3 }, within: '12h', where: { Total: { gt: 50, lt: 100.5 }, 'Item.SKU': { eq: 'TR-2' }, Quantity: { eq: 2 }, Coupon: { eq: 'true' } } }],
    }],
    ['exactly, in minutes and weeks', { any: [{ event: 'Started Checkout', count: { eq: 0 }, within: '90m' }, { event: 'Viewed Page', count: { gte: 10 }, within: '2w' }] }],
  ])('%s comes back unchanged', (_name, rules) => {
    const { rules: back, problems } = roundTrip(rules);
    expect(problems).toEqual([]);
    expect(back).toEqual(rules);
  });

  it('shows a bare condition as "all" of one row, and states "at least 1" when no count was given', () => {
    expect(roundTrip({ event: 'Placed Order' }).rules).toEqual({ all: [{ event: 'Placed Order', count: { gte: 1 } }] });
    expect(roundTrip({ not: { event: 'Placed Order', count: { gte: 1 } } }).rules).toEqual({ all: [{ not: { event: 'Placed Order' } }] });
    expect(roundTrip({ all: [{ trait: 'email' }] }).rules).toEqual({ all: [{ trait: 'email', exists: true }] });
  });

  it.each([
    ['a group inside a group', { all: [{ any: [{ event: 'A' }, { event: 'B' }] }] }, 'condition 1 is a group of conditions inside a group'],
    ['"not" around a group', { all: [{ not: { any: [{ event: 'A' }] } }] }, 'condition 1 is "not" around a group of conditions'],
    ['a count between two numbers', { all: [{ event: 'A', count: { gte: 1, lte: 3 } }] }, 'condition 1 compares the count more than once'],
    ['"did not" with a count', { any: [{ trait: 'email' }, { not: { event: 'A', count: { gte: 3 } } }] }, 'condition 2 counts how often an event did not happen'],
    ['a window in seconds', { all: [{ event: 'A', within: '90s' }] }, 'condition 1 has a time window ("90s") other than minutes, hours, days or weeks'],
    ['a trait tested twice', { all: [{ trait: 'email', contains: '@', exists: true }] }, 'condition 1 tests one profile property more than once'],
    ['"not" around "exists"', { all: [{ not: { trait: 'email', exists: true } }] }, 'condition 1 negates an "exists" test'],
    ['an empty property filter', { all: [{ event: 'A', where: { Total: {} } }] }, 'condition 1 filters "Total" in a way the builder does not show'],
    ['an unknown key', { all: [{ event: 'A', when: '7d' }] }, 'condition 1 has keys the builder does not show'],
  ])('cannot show %s, and says why', (_name, rules, why) => {
    expect(conditionsFromRules(rules)).toEqual({ unsupported: why });
  });

  it('types values as the store compares them: plain numbers and true/false are JSON, quotes keep text', () => {
    expect(valueFromText('5')).toBe(5);
    expect(valueFromText('-12.5')).toBe(-12.5);
    expect(valueFromText('02139')).toBe('02139');
    expect(valueFromText('1e3')).toBe('1e3');
    expect(valueFromText('true')).toBe(true);
    expect(valueFromText('"5"')).toBe('5');
    expect(valueFromText('Shoes')).toBe('Shoes');
    expect(textFromValue('5')).toBe('"5"');
    expect(textFromValue('"quoted"')).toBe('""quoted""');
    expect(valueFromText(textFromValue('"quoted"'))).toBe('"quoted"');
  });

  it('names what a marketer must fix before saving, by condition, control and filter', () => {
    const { problems, rules } = rulesFromConditions({
      match: 'all',
      conditions: [
        { kind: 'did', event: ' ', countOp: 'gte', count: 'abc', within: '0', unit: 'd', filters: [{ property: 'Total', op: 'gt', value: 'lots' }, { property: '', op: 'eq', value: '' }] },
        { kind: 'trait', trait: 'email', op: 'contains', value: '' },
        { kind: 'trait', trait: 'email', op: 'missing', value: 'ignored' },
        { kind: 'did', event: 'A', countOp: 'gte', count: '2', within: '', unit: 'd', filters: [{ property: 'Total', op: 'gt', value: '5' }, { property: 'Total', op: 'gt', value: '6' }] },
      ],
    });
    expect(problems).toEqual([
      { condition: 0, control: 'event', message: 'Name the event, such as Placed Order.' },
      { condition: 0, control: 'count', message: 'Type a whole number of times, such as 1.' },
      { condition: 0, control: 'within', message: 'Type a number above 0, or leave it empty for any time.' },
      { condition: 0, control: 'filterValue', filter: 0, message: 'Type a number, such as 50 or 12.5.' },
      { condition: 0, control: 'filterProperty', filter: 1, message: 'Name the event property, such as Total.' },
      { condition: 0, control: 'filterValue', filter: 1, message: 'Type the value to compare with.' },
      { condition: 1, control: 'value', message: 'Type the value to compare with.' },
      { condition: 3, control: 'filterValue', filter: 1, message: '“Total” already has a “greater than” filter in this condition.' },
    ]);
    expect((rules as { all: unknown[] }).all[2]).toEqual({ trait: 'email', exists: false });
  });
});

const STORE_KEYS: Record<string, string[]> = {
  'Placed Order': ['Total', 'Categories'], 'Viewed Product': ['ProductName', '<b>bold</b>'], 'Added to Cart': ['ItemCount'],
};
/** Event names whose properties the builder asked for, in order. */
let propertyReads: string[];
/** Set to make Profile property's read fail (or answer otherwise) in the next builder. */
let profileProperties: (() => Promise<unknown>) | undefined;

describe('the builder on screen', () => {
  let root: HTMLElement;
  let builder: {
    load(rules: unknown): void;
    read(): { rules?: unknown; problems: { control: Element; message: string }[] };
    controlFor(field: string): Element;
  };
  beforeEach(() => {
    // The form's own markup, so a renamed class or a missing control in index.html fails here.
    const html = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../src/server/console/index.html'), 'utf8');
    const fieldset = /<fieldset id="a-segment"[^]*?<\/fieldset>/.exec(html)![0];
    const traits = /<datalist id="segment-traits">[^]*?<\/datalist>/.exec(html)![0];
    document.body.innerHTML = `${fieldset}<datalist id="segment-events"></datalist>${traits}`;
    root = document.getElementById('a-segment')!;
    propertyReads = [];
    // The store's answers stand in for GET /v1/admin/events and its /properties routes (e2e/console.spec.ts and
    // test/server/console-api.test.ts read them for real).
    builder = createSegmentBuilder(root, {
      eventNames: async () => ['Placed Order', 'Viewed Product'],
      eventProperties: async (name: string) => {
        propertyReads.push(name);
        if (name === 'Broken') throw new Error('the companion server cannot be reached');
        return { sampled: 2, keys: (STORE_KEYS[name] ?? []).map((key) => ({ key, count: 2 })) };
      },
      profileProperties: profileProperties ?? (async () => ({ sampled: 3, keys: [{ key: 'email', count: 3 }, { key: 'properties.plan', count: 2 }, { key: 'title', count: 0 }] })),
      eventPropertiesDelayMs: 5,
    });
  });

  const rows = () => [...root.querySelectorAll<HTMLElement>('.conditions > .condition')];
  const input = (row: Element, cls: string) => row.querySelector<HTMLInputElement | HTMLSelectElement>(`.${cls}`)!;
  const labelOf = (control: Element) => root.querySelector(`label[for="${control.id}"]`)!.textContent;
  const button = (text: string, scope: Element = root) => [...scope.querySelectorAll('button')].find((b) => b.textContent === text)!;

  it('fills one row per condition, with a label naming each control and its condition', async () => {
    builder.load({ any: [{ event: 'Placed Order', count: { gte: 1 }, within: '30d', where: { Total: { gt: 50 } } }, { trait: 'email', contains: '@' }] });
    expect((root.querySelector('.segment-match') as HTMLSelectElement).value).toBe('any');
    const [order, email] = rows();
    expect(input(order, 'c-kind').value).toBe('did');
    expect(input(order, 'c-event').value).toBe('Placed Order');
    expect(labelOf(input(order, 'c-event'))).toBe('Event name, condition 1');
    expect(input(order, 'c-count-op').value).toBe('gte');
    expect(input(order, 'c-count').value).toBe('1');
    expect(input(order, 'c-within').value).toBe('30');
    expect(input(order, 'c-unit').value).toBe('d');
    expect(input(order, 'f-property').value).toBe('Total');
    expect(labelOf(input(order, 'f-value'))).toBe('Value, condition 1, filter 1');
    expect(input(email, 'c-kind').value).toBe('trait');
    expect(labelOf(input(email, 'c-trait'))).toBe('Profile property, condition 2');
    expect(input(email, 'c-trait-op').value).toBe('contains');
    expect(input(email, 'c-value').value).toBe('@');
    expect(email.querySelector<HTMLElement>('.event-part')!.hidden).toBe(true);
    expect(builder.read()).toEqual({ rules: { any: [{ event: 'Placed Order', count: { gte: 1 }, within: '30d', where: { Total: { gt: 50 } } }, { trait: 'email', contains: '@' }] }, problems: [] });
    // Event name suggests the events the store has seen.
    expect(input(order, 'c-event').getAttribute('list')).toBe('segment-events');
    await eventually(() => expect([...document.querySelectorAll('#segment-events option')].map((o) => o.getAttribute('value'))).toEqual(['Placed Order', 'Viewed Product']));
  });

  it('adds, fills and removes conditions and filters, renumbering what follows', () => {
    builder.load({ all: [{ event: 'Placed Order', count: { gte: 1 } }] });
    button('Add condition').click();
    let [, second] = rows();
    input(second, 'c-kind').value = 'trait';
    input(second, 'c-kind').dispatchEvent(new Event('change'));
    input(second, 'c-trait').value = 'email';
    input(second, 'c-trait-op').value = 'missing';
    input(second, 'c-trait-op').dispatchEvent(new Event('change'));
    expect(input(second, 'c-value').closest<HTMLElement>('.field')!.hidden).toBe(true);
    button('Add filter', rows()[0]).click();
    const [first] = rows();
    input(first, 'f-property').value = 'Total';
    input(first, 'f-op').value = 'gt';
    input(first, 'f-value').value = '5';
    expect(document.activeElement).toBe(input(first, 'f-property'));
    expect(builder.read()).toEqual({ rules: { all: [{ event: 'Placed Order', count: { gte: 1 }, where: { Total: { gt: 5 } } }, { trait: 'email', exists: false }] }, problems: [] });

    button('Remove condition', rows()[0]).click();
    [second] = rows();
    expect(rows()).toHaveLength(1);
    expect(labelOf(input(second, 'c-trait'))).toBe('Profile property, condition 1');
    expect(input(second, 'c-trait').value).toBe('email');
    expect(builder.read().rules).toEqual({ all: [{ trait: 'email', exists: false }] });
  });

  it('"did not do" hides the count and saves "not" around the event', () => {
    builder.load({ all: [{ event: 'Placed Order', count: { gte: 3 }, within: '7d' }] });
    const [row] = rows();
    input(row, 'c-kind').value = 'didNot';
    input(row, 'c-kind').dispatchEvent(new Event('change'));
    expect(row.querySelector<HTMLElement>('.count-part')!.hidden).toBe(true);
    expect(builder.read().rules).toEqual({ all: [{ not: { event: 'Placed Order', within: '7d' } }] });
  });

  it('puts each problem, and each server issue, next to the control it names', () => {
    builder.load({ all: [{ event: 'Placed Order', count: { gte: 1 } }, { event: 'Viewed Product', count: { gte: 1 }, where: { 'Item.SKU': { eq: 'X' } } }, { not: { trait: 'email', eq: 'x' } }] });
    const [first, second, third] = rows();
    input(first, 'c-count').value = 'many';
    const { problems } = builder.read();
    expect(problems).toEqual([{ control: input(first, 'c-count'), message: 'Type a whole number of times, such as 1.' }]);
    expect(builder.controlFor('source.rules.all[1].count.gte')).toBe(input(second, 'c-count'));
    expect(builder.controlFor('source.rules.all.1.event')).toBe(input(second, 'c-event'));
    expect(builder.controlFor('source.rules.all[1].where.Item.SKU.eq')).toBe(input(second, 'f-value'));
    expect(builder.controlFor('source.rules.all[2].not.eq')).toBe(input(third, 'c-value'));
    expect(builder.controlFor('source.rules.all[7].event')).toBe(root);
    expect(builder.controlFor('source.rules')).toBe(root);
  });

  it('keeps a tree it cannot show as read-only JSON with a notice, saves it untouched, and can start over', () => {
    const nested = { any: [{ all: [{ event: 'A' }, { trait: 'email', exists: true }] }, { event: 'B', count: { gte: 2 } }] };
    builder.load(nested);
    expect(root.querySelector<HTMLElement>('.segment-builder')!.hidden).toBe(true);
    expect(root.querySelector<HTMLElement>('.segment-json-view')!.hidden).toBe(false);
    expect(root.querySelector('.segment-json-notice')!.textContent).toContain('condition 1 is a group of conditions inside a group');
    expect(JSON.parse(root.querySelector('.segment-json-pre')!.textContent!)).toEqual(nested);
    expect(builder.read()).toEqual({ rules: nested, problems: [] });
    expect(builder.controlFor('source.rules.any[0].all[0].event')).toBe(root);

    button('Start over with conditions').click();
    expect(root.querySelector<HTMLElement>('.segment-builder')!.hidden).toBe(false);
    expect(rows()).toHaveLength(1);
    expect(builder.read().problems.map((p) => p.message)).toEqual(['Name the event, such as Placed Order.']);
  });

  it('Edit as JSON takes the rows as JSON, and closing it brings edited rules back as rows', async () => {
    builder.load({ all: [{ event: 'Placed Order', count: { gte: 1 } }] });
    const details = root.querySelector<HTMLDetailsElement>('.segment-advanced')!;
    const textarea = root.querySelector<HTMLTextAreaElement>('.segment-json')!;
    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    expect(JSON.parse(textarea.value)).toEqual({ all: [{ event: 'Placed Order', count: { gte: 1 } }] });
    expect(root.querySelector<HTMLElement>('.segment-builder')!.hidden).toBe(true);
    textarea.value = '{"any": [{"trait": "email", "contains": "@"}]}';
    expect(builder.read().rules).toEqual({ any: [{ trait: 'email', contains: '@' }] });
    details.open = false;
    details.dispatchEvent(new Event('toggle'));
    expect(root.querySelector<HTMLElement>('.segment-builder')!.hidden).toBe(false);
    expect(input(rows()[0], 'c-trait').value).toBe('email');

    details.open = true;
    details.dispatchEvent(new Event('toggle'));
    textarea.value = '{"all": [';
    expect(builder.read().problems[0]!.message).toMatch(/^not valid JSON/);
    details.open = false;
    details.dispatchEvent(new Event('toggle'));
    expect(root.querySelector('.segment-json-notice')!.textContent).toContain('they are not valid JSON');
  });

  const optionValues = (list: Element | null) => [...(list?.querySelectorAll('option') ?? [])].map((o) => o.getAttribute('value'));
  const propertyList = (row: Element, j = 0) => document.getElementById(row.querySelectorAll('.f-property')[j]!.getAttribute('list')!);

  it("offers each filter's Property the keys its event's store events carry, asking again (once) when the name changes", async () => {
    builder.load({ all: [{ event: 'Placed Order', count: { gte: 1 }, where: { Total: { gt: 50 } } }, { event: 'Viewed Product', count: { gte: 1 }, where: { ProductName: { eq: 'Hat' } } }] });
    const [order, viewed] = rows();
    await eventually(() => expect(optionValues(propertyList(order))).toEqual(['Total', 'Categories']));
    // Each row has its own list; keys are text, never markup.
    await eventually(() => expect(optionValues(propertyList(viewed))).toEqual(['ProductName', '<b>bold</b>']));
    expect(propertyList(order)!.id).not.toBe(propertyList(viewed)!.id);
    expect(propertyList(viewed)!.querySelector('b')).toBeNull();
    expect(propertyList(order)!.querySelector('option')!.getAttribute('label')).toBe('on 2 of the newest 2 events');
    // Accessible names are unchanged.
    expect(labelOf(input(viewed, 'f-property'))).toBe('Property, condition 2, filter 1');

    // Typing a new name letter by letter asks once, for the name typed, after the pause.
    expect(propertyReads).toEqual(['Placed Order', 'Viewed Product']);
    propertyReads.length = 0;
    const typeEvent = (row: Element, letters: string[]) => {
      for (const typed of letters) {
        input(row, 'c-event').value = typed;
        input(row, 'c-event').dispatchEvent(new Event('input'));
      }
    };
    typeEvent(order, ['A', 'Ad', 'Added', 'Added to Cart']);
    await eventually(() => expect(optionValues(propertyList(order))).toEqual(['ItemCount']));
    expect(propertyReads).toEqual(['Added to Cart']);
    // A name asked before is not asked again, nor is any after a redraw (adding a filter).
    typeEvent(order, ['Viewed Product']);
    await eventually(() => expect(optionValues(propertyList(order))).toEqual(['ProductName', '<b>bold</b>']));
    button('Add filter', rows()[1]).click();
    await eventually(() => expect(optionValues(propertyList(rows()[1]!, 1))).toEqual(['ProductName', '<b>bold</b>']));
    expect(propertyReads).toEqual(['Added to Cart']);

    // An event the store cannot answer for suggests nothing; any property can still be typed.
    const event = input(rows()[0]!, 'c-event');
    event.value = 'Broken';
    event.dispatchEvent(new Event('input'));
    await eventually(() => expect(propertyReads).toEqual(['Added to Cart', 'Broken']));
    await eventually(() => expect(optionValues(propertyList(rows()[0]!))).toEqual([]));
  });

  it('offers Profile property the keys the store\'s profiles carry', async () => {
    builder.load({ all: [{ trait: 'properties.plan', eq: 'gold' }] });
    await eventually(() => expect(optionValues(document.getElementById('segment-traits'))).toEqual(['email', 'properties.plan', 'title']));
    expect(input(rows()[0]!, 'c-trait').getAttribute('list')).toBe('segment-traits');
    expect(labelOf(input(rows()[0]!, 'c-trait'))).toBe('Profile property, condition 1');
  });
});

describe('Profile property when the store cannot be asked', () => {
  it('keeps the fixed list of profile columns', async () => {
    const html = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../src/server/console/index.html'), 'utf8');
    const fieldset = /<fieldset id="a-segment"[^]*?<\/fieldset>/.exec(html)![0];
    const traits = /<datalist id="segment-traits">[^]*?<\/datalist>/.exec(html)![0];
    document.body.innerHTML = `${fieldset}<datalist id="segment-events"></datalist>${traits}`;
    let failure: Promise<never> | undefined;
    const builder = createSegmentBuilder(document.getElementById('a-segment')!, {
      eventNames: async () => [],
      eventProperties: async () => ({ sampled: 0, keys: [] }),
      profileProperties: () => (failure = Promise.reject(new Error('HTTP 500'))),
    });
    builder.load({ all: [{ trait: 'email', exists: true }] });
    // The builder awaited the failed read first, so it has handled it once this handler runs.
    await eventually(() => expect(failure).toBeDefined());
    await failure!.catch(() => undefined);
    const values = [...document.querySelectorAll('#segment-traits option')].map((o) => o.getAttribute('value'));
    expect(values).toContain('location.city');
    expect(values).toContain('first_name');
  });
});
