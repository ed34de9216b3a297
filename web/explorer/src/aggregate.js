// An aggregate of any registered kind (the API's aggregateKinds: user, order, product, ...)
// through its versions: a slider from the first version to the last; at each, the state right
// after that version's event (aggregate with atVersion, its fields as the aggregate's
// declaration shows them) and what the event changed (its entry in history). Each position
// reads one history entry, so a long stream costs the same as a short one on the page. "Open in
// Playground" carries the very query the view ran.
import { h, replace, json, time } from './dom.js';
import { query, aggregateKinds } from './api.js';

// name is a kind's name as part of an operation name: ExplorerOrderAtVersion.
function name(kind) {
  return kind.name.replace(/[^A-Za-z0-9_]/g, '') || 'Aggregate';
}

// atQuery is the view's query: the aggregate at a version, and that version's history entry
// (history's cursor is a version, so after: v-1 is the entry of version v).
function atQuery(kind) {
  return `query Explorer${name(kind)}AtVersion($category: String!, $id: ID!, $version: Int!, $after: String!) {
  aggregate(category: $category, id: $id, atVersion: $version) {
    category id version fields
    history(first: 1, after: $after) {
      edges { node { event { version type recordedAt position metadata data } changes { field before after } } }
    }
  }
}`;
}

function asOfQuery(kind) {
  return `query Explorer${name(kind)}AsOf($category: String!, $id: ID!, $asOf: Time!) { aggregate(category: $category, id: $id, asOf: $asOf) { version } }`;
}

const versionsQuery = `query ExplorerVersions($stream: String!) { stream(id: $stream) { version firstVersion deleted } }`;

function show(value) {
  if (value === null || value === undefined) return '—';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

export function aggregateView(main, category, id, params) {
  let alive = true;
  let stopView = () => {};
  replace(main, h('h2', {}, 'Aggregate through time'), h('p', { class: 'muted' }, 'Loading…'));
  aggregateKinds().then((kinds) => {
    if (alive) stopView = view(main, kinds, category, id, params);
  }, (err) => {
    if (alive) replace(main, h('h2', {}, 'Aggregate through time'), h('p', { class: 'error', role: 'alert' }, err.message));
  });
  return () => {
    alive = false;
    stopView();
  };
}

// view is the aggregate view once the registered kinds are known; it returns what stops it.
function view(main, kinds, category, id, params) {
  const kind = kinds.find((k) => k.category === category) || (category ? null : kinds[0]);
  const categories = kinds.map((k) => k.category).join(', ');
  const kindSelect = h('select', { id: 'agg-kind', 'aria-label': 'Aggregate kind' },
    kinds.map((k) => h('option', { value: k.category, selected: kind !== null && k.category === kind.category }, k.category)));
  const idInput = h('input', { id: 'agg-id', value: id, placeholder: 'the aggregate id', autocomplete: 'off', 'aria-label': 'Aggregate id' });
  const body = h('div', { id: 'agg-body' });
  replace(main,
    h('h2', {}, 'Aggregate through time'),
    h('form', {
      class: 'search',
      onsubmit: (e) => {
        e.preventDefault();
        if (idInput.value.trim() && kindSelect.value) location.hash = `#/aggregate/${encodeURIComponent(kindSelect.value)}/${encodeURIComponent(idInput.value.trim())}`;
      },
    }, kindSelect, idInput, h('button', { type: 'submit' }, 'Open')),
    body);
  if (kinds.length === 0) {
    replace(body, h('p', {}, 'The server has no registered aggregates.'));
    return () => {};
  }
  if (!kind) {
    replace(body, h('p', { class: 'error', role: 'alert' }, `No registered aggregate has the category ${JSON.stringify(category)}; the server's are ${categories}.`));
    return () => {};
  }
  if (!id) {
    replace(body, h('p', { class: 'muted' }, `Choose a kind (${categories}) and give an id, or open one from the streams list.`));
    return () => {};
  }
  const streamId = `${kind.category}-${id}`;
  const atDoc = atQuery(kind);

  let alive = true;
  let seq = 0; // answers to older slider positions are dropped
  let timer = null;
  const slider = h('input', { id: 'version-slider', type: 'range', step: '1', 'aria-label': 'Version' });
  const label = h('output', { id: 'version-label', for: 'version-slider' });
  const state = h('div', { id: 'agg-state', 'aria-live': 'polite' });
  const link = h('a', { id: 'open-playground', href: '/', target: '_blank', rel: 'noopener' }, 'Open this view in the Playground ↗');
  const asOf = h('input', { id: 'agg-asof', type: 'datetime-local', step: '0.001', 'aria-label': 'As of (UTC)' });
  const asOfNote = h('span', { class: 'muted', 'aria-live': 'polite' });

  async function at(version) {
    const mine = ++seq;
    slider.value = String(version);
    label.textContent = `version ${version} of ${slider.max}`;
    const vars = { category: kind.category, id, version, after: String(version - 1) };
    link.href = `/?${new URLSearchParams({ query: atDoc, variables: JSON.stringify(vars, null, 2) })}`;
    history.replaceState(null, '', `#/aggregate/${encodeURIComponent(kind.category)}/${encodeURIComponent(id)}?v=${version}`);
    try {
      const data = await query(atDoc, vars);
      if (!alive || mine !== seq) return;
      const s = data.aggregate;
      if (!s) {
        replace(state, h('p', {}, `No ${kind.category} ${id} at version ${version}.`));
        return;
      }
      const entry = s.history.edges.length ? s.history.edges[0].node : null;
      const changed = new Map((entry ? entry.changes : []).map((c) => [c.field, c]));
      replace(state,
        entry ? h('p', { class: 'event-head' },
          h('span', { class: 'version' }, `v${entry.event.version}`),
          h('strong', { id: 'agg-event-type' }, entry.event.type),
          h('time', { datetime: entry.event.recordedAt }, time(entry.event.recordedAt)),
          h('span', { class: 'muted' }, `position ${entry.event.position}`)) : null,
        h('div', { class: 'columns' },
          h('section', { 'aria-labelledby': 'state-h' },
            h('h3', { id: 'state-h' }, 'State after this event'),
            h('table', { class: 'state' }, h('tbody', {}, Object.entries(s.fields).map(([field, value]) => h('tr', { class: changed.has(field) ? 'changed' : '' },
              h('th', { scope: 'row' }, field),
              h('td', { 'data-field': field }, show(value))))))),
          h('section', { 'aria-labelledby': 'changes-h' },
            h('h3', { id: 'changes-h' }, 'What the event changed'),
            entry && entry.changes.length
              ? h('table', { class: 'diff', id: 'agg-changes' },
                h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Before'), h('th', { scope: 'col' }, 'After'))),
                h('tbody', {}, entry.changes.map((c) => h('tr', { 'data-field': c.field },
                  h('th', { scope: 'row' }, c.field),
                  h('td', { class: 'before' }, h('del', {}, show(c.before))),
                  h('td', { class: 'after' }, h('ins', {}, show(c.after)))))))
              : h('p', { class: 'muted' }, 'Nothing the state shows.'),
            entry ? h('details', {}, h('summary', {}, 'the event'), h('pre', {}, json({ data: entry.event.data, metadata: entry.event.metadata }))) : null)));
    } catch (err) {
      if (alive && mine === seq) replace(state, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }

  async function load() {
    replace(body, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const { stream } = await query(versionsQuery, { stream: streamId });
      if (!alive) return;
      if (!stream) {
        replace(body, h('p', {}, `There is no ${kind.category} ${id}.`));
        return;
      }
      slider.min = String(stream.firstVersion);
      slider.max = String(stream.version);
      const step = (d) => at(Math.min(stream.version, Math.max(stream.firstVersion, Number(slider.value) + d)));
      slider.addEventListener('input', () => {
        label.textContent = `version ${slider.value} of ${slider.max}`;
        clearTimeout(timer);
        timer = setTimeout(() => at(Number(slider.value)), 120);
      });
      replace(body,
        h('p', {}, h('a', { href: `#/stream/${encodeURIComponent(streamId)}` }, `Stream ${streamId}`), `: ${stream.version} versions`,
          stream.deleted ? h('span', { class: 'badge bad' }, 'deleted') : ''),
        h('div', { class: 'slider' },
          h('button', { type: 'button', id: 'version-prev', 'aria-label': 'Previous version', onclick: () => step(-1) }, '←'),
          slider,
          h('button', { type: 'button', id: 'version-next', 'aria-label': 'Next version', onclick: () => step(1) }, '→'),
          label),
        h('form', {
          class: 'search',
          onsubmit: async (e) => {
            e.preventDefault();
            if (!asOf.value) return;
            const t = new Date(`${asOf.value}Z`);
            if (Number.isNaN(t.getTime())) return;
            try {
              const data = await query(asOfQuery(kind), { category: kind.category, id, asOf: t.toISOString() });
              if (!alive) return;
              if (!data.aggregate) {
                asOfNote.textContent = `the ${kind.category} did not exist yet then`;
                return;
              }
              asOfNote.textContent = `at that time it was at version ${data.aggregate.version}`;
              at(data.aggregate.version);
            } catch (err) {
              asOfNote.textContent = err.message;
            }
          },
        }, h('label', { for: 'agg-asof' }, 'Go to the state as of (UTC)'), asOf, h('button', { type: 'submit' }, 'Go'), asOfNote),
        h('p', {}, link),
        state);
      const wanted = Number(params.get('v'));
      at(wanted >= stream.firstVersion && wanted <= stream.version ? wanted : stream.version);
    } catch (err) {
      if (alive) replace(body, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }
  load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
