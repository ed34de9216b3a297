// The live tail: the events subscription, filtered by category and types. Pause ends the
// subscription; Resume starts a new one with after: the position of the last event received,
// so the server sends everything appended in between first, with no gap and no duplicate. A
// tail paused before its first event keeps its subscription until one comes, which gives it
// that position. A dropped connection resumes the same way on its own. Only the newest rows
// stay on the page.
import { h, replace, json, time, tagList } from './dom.js';
import { subscribe } from './api.js';

const maxRows = 500;

const liveSubscription = `subscription ExplorerLive($after: String, $category: String, $types: [String!]) {
  events(after: $after, category: $category, types: $types) { streamId version type position recordedAt tags data }
}`;

export function liveView(main, params) {
  const category = h('input', { id: 'live-category', value: params.get('category') || '', placeholder: 'any', autocomplete: 'off' });
  const types = h('input', { id: 'live-types', value: params.get('types') || '', placeholder: 'any (comma-separated)', autocomplete: 'off' });
  const toggle = h('button', { type: 'button', id: 'live-toggle' }, 'Start');
  const clear = h('button', { type: 'button', id: 'live-clear' }, 'Clear');
  const status = h('p', { id: 'live-status', role: 'status' }, 'Stopped.');
  const list = h('ol', { id: 'live-list', class: 'timeline live', reversed: true });
  replace(main,
    h('h2', {}, 'Live tail'),
    h('form', { class: 'search', onsubmit: (e) => { e.preventDefault(); restart(); } },
      h('label', { for: 'live-category' }, 'Category'), category,
      h('label', { for: 'live-types' }, 'Types'), types,
      h('button', { type: 'submit', id: 'live-apply' }, 'Apply filters'), toggle, clear),
    status,
    list);

  let last = null; // the position of the last event received
  let end = null; // ends the open subscription
  let running = false; // events are shown as they come (not paused or stopped)
  let held = null; // paused before any event: the first event that came since, not shown yet
  let retry = null;
  let received = 0;

  const filters = () => {
    const vars = {};
    if (category.value.trim()) vars.category = category.value.trim();
    const t = types.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (t.length) vars.types = t;
    return vars;
  };

  function show(e) {
    received++;
    list.prepend(h('li', { 'data-position': e.position },
      h('div', { class: 'event-head' },
        h('a', { href: `#/stream/${encodeURIComponent(e.streamId)}?last=1` }, e.streamId),
        h('span', { class: 'version' }, `v${e.version}`),
        h('strong', { class: 'type' }, e.type),
        h('time', { datetime: e.recordedAt }, time(e.recordedAt)),
        h('span', { class: 'muted' }, `position ${e.position}`),
        tagList(e.tags)),
      h('details', {}, h('summary', {}, 'data'), h('pre', {}, json(e.data)))));
    while (list.children.length > maxRows) list.lastElementChild.remove();
  }

  function showRunning() {
    running = true;
    toggle.textContent = 'Pause';
    toggle.setAttribute('aria-pressed', 'false');
  }

  function start() {
    clearTimeout(retry);
    if (held) {
      show(held);
      held = null;
    }
    showRunning();
    if (end) { // paused before the first event, and none came: the subscription is still open
      status.textContent = 'Live: showing events appended from now on.';
      status.dataset.state = 'live';
      return;
    }
    const vars = filters();
    if (last) vars.after = last;
    status.textContent = last ? `Connecting, resuming after position ${last}…` : 'Connecting…';
    end = subscribe(liveSubscription, vars, {
      onOpen: () => {
        if (!running) return;
        status.textContent = last ? `Live, resumed after position ${last}.` : 'Live: showing events appended from now on.';
        status.dataset.state = 'live';
      },
      onNext: (data) => {
        const e = data.events;
        last = e.position;
        if (running) {
          show(e);
          return;
        }
        // Paused before any event arrived: this first one marks the place to resume from.
        held = e;
        if (end) end();
        end = null;
        status.textContent = `Paused; an event came since (position ${last}); Resume catches up from there.`;
      },
      onError: (err) => {
        end = null;
        if (!running) return;
        status.dataset.state = 'error';
        if (err.code) { // the server refused the subscription: retrying would not help
          running = false;
          toggle.textContent = 'Start';
          status.textContent = `Stopped: ${err.message}`;
          return;
        }
        status.textContent = `${err.message}; reconnecting in 2 s from the last position…`;
        retry = setTimeout(() => { if (running) start(); }, 2000);
      },
      onComplete: () => {
        end = null;
        running = false;
        toggle.textContent = 'Start';
        status.textContent = 'The server ended the subscription.';
      },
    });
  }

  // pause stops showing events. With a position to resume from, it ends the subscription;
  // before the first event there is none, so the subscription stays open until one comes,
  // and that event (held, not shown) gives the position.
  function pause() {
    running = false;
    clearTimeout(retry);
    if (last && end) {
      end();
      end = null;
    }
    toggle.textContent = 'Resume';
    toggle.setAttribute('aria-pressed', 'true');
    status.dataset.state = 'paused';
    status.textContent = last
      ? `Paused after position ${last} (${received} events shown); Resume catches up from there.`
      : 'Paused before any event arrived; Resume shows everything from the start of the tail.';
  }

  // restart applies new filters: a new subscription, from the last position when there is one.
  function restart() {
    pause();
    if (end) end();
    end = null;
    start();
  }

  toggle.addEventListener('click', () => (running ? pause() : start()));
  clear.addEventListener('click', () => list.replaceChildren());
  start();
  return () => {
    running = false;
    clearTimeout(retry);
    if (end) end();
  };
}
