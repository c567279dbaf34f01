// Building blocks of the console's pages. Everything is built with DOM
// calls and textContent, never innerHTML, so nothing the API returns can
// become markup.

let ids = 0;

/** A fresh element id. */
export function uid(prefix = 'lk') {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** `h('button', { class: 'button', onclick: fn, text: 'Go' }, child…)`.
 * Props: `class`, `text`, `on<event>` (a function), `attrs` (set as
 * attributes), `dataset`; any other key is set as a property when the
 * element has it, else as an attribute. Children: nodes, strings, arrays;
 * null, undefined and false are skipped. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'attrs') for (const [a, v] of Object.entries(value)) el.setAttribute(a, v);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key in el) el[key] = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A date in the viewer's locale, with UTC on hover; '—' when absent.
 * Takes an RFC 3339 string or Unix seconds. */
export function when(value) {
  if (value === undefined || value === null || value === '') return h('span', { class: 'muted', text: '—' });
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return h('span', { text: String(value) });
  return h('time', {
    dateTime: d.toISOString(),
    title: `${d.toISOString().replace('.000Z', 'Z')} UTC`,
    text: d.toLocaleString(),
  });
}

/** Shows `text` in `el` (an alert or notice), or hides it when empty. */
export function say(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

/** An alert paragraph, hidden until `say` gives it words. */
export function alertBox() {
  return h('p', { class: 'alert', attrs: { role: 'alert' }, hidden: true });
}

/** A status notice, hidden until `say` gives it words. */
export function noticeBox() {
  return h('p', { class: 'notice', attrs: { role: 'status' }, hidden: true });
}

/** Marks a button busy (disabled, with `text`); returns the function
 * that restores it. */
export function busy(button, text) {
  const label = button.textContent;
  button.textContent = text;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  return () => {
    button.textContent = label;
    button.disabled = false;
    button.removeAttribute('aria-busy');
  };
}

/** A labelled input with its error line. `spec`: { name, label, type
 * (text, email, password, number, select, textarea, checkbox), value,
 * required, autocomplete, options ([value, label] pairs for a select),
 * help, placeholder, min, max }. Returns { root, input, error, name }. */
export function field(spec) {
  const id = uid(spec.name || 'field');
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const help = spec.help ? h('p', { class: 'help', id: `${id}-help`, text: spec.help }) : null;
  const described = [help && help.id, error.id].filter(Boolean).join(' ');
  let input;
  if (spec.type === 'select') {
    input = h('select', { id, name: spec.name, attrs: { 'aria-describedby': described } },
      (spec.options || []).map(([v, l]) => h('option', { value: v, text: l, selected: String(spec.value ?? '') === String(v) })));
  } else if (spec.type === 'textarea') {
    input = h('textarea', { id, name: spec.name, value: spec.value ?? '', rows: spec.rows || 4, attrs: { 'aria-describedby': described } });
  } else {
    input = h('input', {
      id,
      name: spec.name,
      type: spec.type || 'text',
      value: spec.type === 'checkbox' ? undefined : spec.value ?? '',
      checked: spec.type === 'checkbox' ? Boolean(spec.value) : undefined,
      autocomplete: spec.autocomplete || 'off',
      placeholder: spec.placeholder,
      min: spec.min,
      max: spec.max,
      attrs: { 'aria-describedby': described },
    });
    if (spec.type === 'text' || !spec.type) {
      input.spellcheck = false;
      input.setAttribute('autocapitalize', 'none');
    }
  }
  if (spec.required) input.required = true;
  const label = h('label', { htmlFor: id, text: spec.label });
  const root = spec.type === 'checkbox'
    ? h('div', { class: 'field check' }, input, label, help, error)
    : h('div', { class: 'field' }, label, input, help, error);
  return { root, input, error, name: spec.name };
}

/** Clears every field's error in a list of fields. */
export function clearErrors(fields) {
  for (const f of fields) {
    say(f.error, '');
    f.input.removeAttribute('aria-invalid');
  }
}

/** Shows `text` beside the field named `name`; false when no field of
 * the list has that name. */
export function fieldError(fields, name, text) {
  const f = fields.find((x) => x.name === name);
  if (!f) return false;
  say(f.error, text);
  f.input.setAttribute('aria-invalid', 'true');
  f.input.focus();
  return true;
}

/** A modal dialog. `content`: nodes; `actions`: buttons (a button with
 * `value="cancel"` closes it). Returns { dialog, close }; the dialog is
 * removed from the page when closed. */
export function modal(title, content, actions) {
  const titleId = uid('dialog-title');
  const dialog = h('dialog', { class: 'dialog', attrs: { 'aria-labelledby': titleId } },
    h('h2', { id: titleId, text: title }),
    h('div', { class: 'dialog-body' }, content),
    h('div', { class: 'dialog-actions' }, actions));
  const close = () => {
    if (dialog.open) dialog.close();
  };
  dialog.addEventListener('close', () => dialog.remove());
  for (const b of actions) if (b.value === 'cancel') b.addEventListener('click', close);
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/** Asks before something that cannot be undone. Resolves to true when
 * confirmed. `spec`: { title, body, confirm (label), danger }. */
export function confirmAction(spec) {
  return new Promise((resolve) => {
    let answered = false;
    const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
    const ok = h('button', { class: `button ${spec.danger === false ? 'primary' : 'danger'}`, type: 'button', text: spec.confirm || 'Confirm' });
    const { dialog, close } = modal(spec.title, h('p', { text: spec.body }), [cancel, ok]);
    ok.addEventListener('click', () => {
      answered = true;
      resolve(true);
      close();
    });
    dialog.addEventListener('close', () => {
      if (!answered) resolve(false);
    });
    cancel.focus();
  });
}

/** A short message in the page's live region. */
export function toast(text, kind = 'ok') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const t = h('div', { class: `toast ${kind}`, text });
  region.append(t);
  setTimeout(() => t.remove(), 6000);
}

/** A page heading with actions on its right. */
export function pageHead(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', { text: title, tabIndex: -1 }), h('div', { class: 'actions' }, actions));
}

/** A card section with a heading. */
export function card(title, ...children) {
  const id = uid('card');
  return h('section', { class: 'card', attrs: { 'aria-labelledby': id } },
    h('h2', { id, text: title }), children);
}

/** A table. `spec`: { caption, columns: [{ label, cell(row) -> node or
 * string, class }], rows, empty (text), select: { id(row), label(row),
 * selected (Set), onChange(Set) } }. */
export function table(spec) {
  const rows = spec.rows || [];
  if (rows.length === 0) return h('p', { class: 'empty', text: spec.empty || 'Nothing here yet.' });
  const sel = spec.select;
  const head = h('tr', {},
    sel ? h('th', { scope: 'col', class: 'pick' }, selectAll(rows, sel)) : null,
    spec.columns.map((c) => h('th', { scope: 'col', class: c.class, text: c.label })));
  const body = rows.map((row) => h('tr', {},
    sel ? h('td', { class: 'pick' }, selectOne(row, sel)) : null,
    spec.columns.map((c) => {
      const v = c.cell(row);
      return h('td', { class: c.class }, v === undefined || v === null || v === '' ? h('span', { class: 'muted', text: '—' }) : v);
    })));
  // A table wider than a narrow screen scrolls inside its wrapper, which
  // the keyboard must be able to reach and a screen reader to name.
  return h('div', { class: 'table-wrap', tabIndex: 0, attrs: { role: 'region', 'aria-label': spec.caption || 'Table' } },
    h('table', { class: 'table' },
      spec.caption ? h('caption', { class: 'visually-hidden', text: spec.caption }) : null,
      h('thead', {}, head), h('tbody', {}, body)));
}

function selectOne(row, sel) {
  const id = sel.id(row);
  const box = h('input', { type: 'checkbox', checked: sel.selected.has(id), attrs: { 'aria-label': `Select ${sel.label(row)}` }, dataset: { pick: id } });
  box.addEventListener('change', () => {
    if (box.checked) sel.selected.add(id);
    else sel.selected.delete(id);
    const all = box.closest('table')?.querySelector('input[data-pick-all]');
    if (all) all.checked = sel.selected.size > 0 && [...box.closest('tbody').querySelectorAll('input[data-pick]')].every((b) => b.checked);
    sel.onChange(sel.selected);
  });
  return box;
}

function selectAll(rows, sel) {
  const box = h('input', { type: 'checkbox', attrs: { 'aria-label': 'Select all on this page' }, dataset: { pickAll: '1' } });
  box.checked = rows.length > 0 && rows.every((r) => sel.selected.has(sel.id(r)));
  box.addEventListener('change', () => {
    for (const r of rows) {
      if (box.checked) sel.selected.add(sel.id(r));
      else sel.selected.delete(sel.id(r));
    }
    for (const b of box.closest('table').querySelectorAll('input[data-pick]')) b.checked = box.checked;
    sel.onChange(sel.selected);
  });
  return box;
}

/** A small label. `kind`: ok, warn, danger, or none. */
export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}`.trim(), text });
}

/** A button. `kind`: primary, subtle, danger. */
export function button(text, onclick, kind = 'subtle', extra = {}) {
  return h('button', { class: `button ${kind}`, type: 'button', text, onclick, ...extra });
}

/** A button that copies `text` to the clipboard and says so. */
export function copyButton(text, label = 'Copy') {
  const b = button(label, async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Select and copy';
    }
    setTimeout(() => {
      b.textContent = label;
    }, 2000);
  });
  return b;
}

/** "Load more" for a cursor-paged list: shown only when there is a next
 * page. */
export function more(next, onMore) {
  if (!next) return null;
  return h('div', { class: 'more' }, button('Load more', () => onMore(next)));
}

/** Shows a secret the server will never show again (an API key, a
 * token): in a dialog with a copy button and a plain warning. Nothing
 * keeps it once the dialog closes. `spec`: { title, secret, label (what
 * it is), note (extra words) }. Resolves when the dialog is closed. */
export function showSecret(spec) {
  return new Promise((resolve) => {
    const done = h('button', { class: 'button primary', type: 'button', value: 'cancel', text: 'I have copied it' });
    const content = [secretBox(spec.secret, spec.label || 'secret'), spec.note ? h('p', { text: spec.note }) : null];
    const { dialog } = modal(spec.title, content, [done]);
    dialog.addEventListener('close', () => resolve());
    done.focus();
  });
}
/** A dialog holding a form. `spec`: { title, intro (text), fields (from
 * field()), submit (label), busy (label while sending), send() ->
 * Promise of null when done (the dialog closes) or { field, text } for a
 * refusal, shown beside the field it names or else above the form }.
 * An empty required field is named before anything is sent. Resolves to
 * true when it was sent and taken, false when cancelled. */
export function formDialog(spec) {
  return new Promise((resolve) => {
    let ok = false;
    const error = alertBox();
    const fields = spec.fields || [];
    // The id as an attribute: a form's `id` property is shadowed by a
    // control named "id".
    const formId = uid('form');
    const form = h('form', { attrs: { id: formId }, novalidate: true },
      spec.intro ? h('p', { class: 'muted', text: spec.intro }) : null,
      error, fields.map((f) => f.root), spec.extra || null);
    const cancel = h('button', { class: 'button subtle', type: 'button', value: 'cancel', text: 'Cancel' });
    const submit = h('button', { class: `button ${spec.danger ? 'danger' : 'primary'}`, type: 'submit', text: spec.submit || 'Save' });
    submit.setAttribute('form', formId);
    const { dialog, close } = modal(spec.title, form, [cancel, submit]);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      clearErrors(fields);
      say(error, '');
      for (const f of fields) {
        if (f.input.required && !String(f.input.value).trim()) {
          const label = f.root.querySelector('label');
          fieldError(fields, f.name, `${label ? label.textContent : 'This field'} is required.`);
          return;
        }
      }
      const restore = busy(submit, spec.busy || 'Saving…');
      const refusal = await spec.send();
      restore();
      if (!refusal) {
        ok = true;
        close();
        return;
      }
      if (!(refusal.field && fieldError(fields, refusal.field, refusal.text))) say(error, refusal.text);
    });
    dialog.addEventListener('close', () => resolve(ok));
    const first = fields.find((f) => !f.input.disabled);
    if (first) first.input.focus();
  });
}

/** A secret shown once: the value with a copy button and a plain warning
 * that it will not be shown again. */
export function secretBox(secret, what = 'secret') {
  return h('div', { class: 'secret-once' },
    h('p', { class: 'alert warn', attrs: { role: 'status' }, text: `Copy this ${what} now. It is shown only once: this is the only time it is shown, as latchkey keeps only a digest and cannot show it again.` }),
    h('div', { class: 'secret' }, h('code', { class: 'mono', dataset: { secret: '1' }, text: secret }), copyButton(secret)));
}

/** Lets a table from table() stack its rows as labelled cards on narrow
 * screens (see `.stacked` in app.css): each cell is labelled with its
 * column's heading. Returns the node it was given. */
export function stackable(node) {
  const t = node.querySelector ? node.querySelector('table') : null;
  if (!t) return node;
  const labels = [...t.querySelectorAll('thead th')].map((th) => th.textContent);
  for (const tr of t.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((td, i) => {
      if (labels[i]) td.dataset.label = labels[i];
    });
  }
  t.classList.add('stacked');
  return node;
}

/** Replaces `el`'s children with `children`, skipping null, undefined and
 * false (replaceChildren would show them as text). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}
