// Statistics: the projections' checkpoints and lag (refreshed every 5 s while shown), and events
// per interval as a bar chart drawn in SVG from eventStats (counted by the server in SQL, so a
// big log costs the page one small answer).
import { h, s, replace } from './dom.js';
import { query } from './api.js';

const projectionsQuery = `query ExplorerProjections { projections { name status position lag skipped } }`;

const statsQuery = `query ExplorerEventStats($from: Time!, $to: Time!, $interval: StatsInterval!, $category: String) {
  eventStats(from: $from, to: $to, interval: $interval, category: $category) {
    total
    buckets { start end total }
  }
}`;

// ranges: what the chart can show, each as a span back from now and its bucket.
const ranges = [
  { key: 'hour', label: 'last hour, per minute', ms: 3600e3, interval: 'MINUTE' },
  { key: 'day', label: 'last 24 hours, per hour', ms: 24 * 3600e3, interval: 'HOUR' },
  { key: 'month', label: 'last 30 days, per day', ms: 30 * 24 * 3600e3, interval: 'DAY' },
];

function chart(buckets, interval) {
  const width = 900;
  const height = 220;
  const pad = { left: 48, right: 8, top: 10, bottom: 28 };
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const w = (width - pad.left - pad.right) / Math.max(1, buckets.length);
  const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
  const label = (t) => {
    const d = new Date(t);
    if (interval === 'DAY') return d.toISOString().slice(5, 10);
    return d.toISOString().slice(11, 16);
  };
  const every = Math.max(1, Math.ceil(buckets.length / 10));
  return s('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': 'chart-title', class: 'chart' },
    s('title', { id: 'chart-title' }, `Events per ${interval.toLowerCase()}, at most ${max} in a bucket`),
    s('line', { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: 'axis' }),
    s('text', { x: pad.left - 6, y: y(max) + 4, class: 'tick', 'text-anchor': 'end' }, String(max)),
    s('text', { x: pad.left - 6, y: y(0) + 4, class: 'tick', 'text-anchor': 'end' }, '0'),
    buckets.map((b, i) => s('g', {},
      s('rect', { x: pad.left + i * w + 1, y: y(b.total), width: Math.max(1, w - 2), height: y(0) - y(b.total), class: 'bar' },
        s('title', {}, `${b.start} – ${b.end}: ${b.total} events`)),
      i % every === 0 ? s('text', { x: pad.left + i * w + w / 2, y: height - 8, class: 'tick', 'text-anchor': 'middle' }, label(b.start)) : null)));
}

export function statsView(main, params) {
  const projections = h('div', { id: 'projections', 'aria-live': 'polite' });
  const rangeSelect = h('select', { id: 'stats-range', 'aria-label': 'Range' },
    ranges.map((r) => h('option', { value: r.key, selected: r.key === (params.get('range') || 'hour') }, r.label)));
  const category = h('input', { id: 'stats-category', placeholder: 'any', autocomplete: 'off', value: params.get('category') || '' });
  const chartBox = h('div', { id: 'chart' });
  replace(main,
    h('h2', {}, 'Statistics'),
    h('section', { 'aria-labelledby': 'proj-h' }, h('h3', { id: 'proj-h' }, 'Projections'), projections),
    h('section', { 'aria-labelledby': 'rate-h' },
      h('h3', { id: 'rate-h' }, 'Events per interval'),
      h('form', { class: 'search', onsubmit: (e) => { e.preventDefault(); loadChart(); } },
        rangeSelect, h('label', { for: 'stats-category' }, 'Category'), category, h('button', { type: 'submit' }, 'Show')),
      chartBox));

  let alive = true;
  let timer = null;
  async function loadProjections() {
    try {
      const { projections: list } = await query(projectionsQuery);
      if (!alive) return;
      replace(projections, h('table', {},
        h('thead', {}, h('tr', {}, ['Projection', 'Status', 'Lag (events)', 'Skipped', 'Checkpoint'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, list.map((p) => h('tr', {},
          h('th', { scope: 'row' }, p.name),
          h('td', {}, h('span', { class: `badge ${p.status === 'LIVE' ? 'good' : 'warn'}` }, p.status)),
          h('td', { class: 'num', 'data-lag': p.name }, p.lag),
          h('td', { class: 'num' }, p.skipped),
          h('td', { class: 'muted' }, p.position || '—'))))),
      h('p', { class: 'muted' }, `Refreshed ${new Date().toISOString().slice(11, 19)} UTC, every 5 s.`));
    } catch (err) {
      if (alive) replace(projections, h('p', { class: 'error', role: 'alert' }, err.message));
    }
    if (alive) timer = setTimeout(loadProjections, 5000);
  }
  async function loadChart() {
    const r = ranges.find((x) => x.key === rangeSelect.value) || ranges[0];
    const to = new Date();
    const from = new Date(to.getTime() - r.ms);
    const vars = { from: from.toISOString(), to: to.toISOString(), interval: r.interval };
    if (category.value.trim()) vars.category = category.value.trim();
    replace(chartBox, h('p', { class: 'muted' }, 'Counting…'));
    try {
      const { eventStats } = await query(statsQuery, vars);
      if (!alive) return;
      replace(chartBox, h('p', {}, `${eventStats.total} events, ${r.label}.`), chart(eventStats.buckets, r.interval));
    } catch (err) {
      if (alive) replace(chartBox, h('p', { class: 'error', role: 'alert' }, err.message));
    }
  }
  loadProjections();
  loadChart();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
