// A few DOM helpers: the page builds its elements with these, never from HTML strings, so that
// data from the server (ids, event data) is always text and the Content-Security-Policy needs
// no inline scripts or styles.

// h makes an element: h('a', { href: '#/', class: 'x', onclick: fn }, 'text', child, ...).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

const svgNS = 'http://www.w3.org/2000/svg';

// s makes an SVG element.
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

// replace puts children in place of el's.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// json is a value as indented JSON text.
export function json(value) {
  return JSON.stringify(value, null, 2);
}

// time is an RFC 3339 time shown short and readable, in UTC.
export function time(rfc3339) {
  if (!rfc3339) return '';
  return rfc3339.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1');
}

// tagList shows an event's tags (what it is about, such as product:42), or nothing.
export function tagList(tags) {
  if (!tags || tags.length === 0) return '';
  return h('span', { class: 'tags' }, tags.map((t) => h('span', { class: 'tag' }, t)));
}
