// DOM pieces around the canvas: menus, dialogs, notices, the node search box and text editing overlays.

import { categoryName, nodeDescription, nodeName, t } from './i18n.js';

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}
export { element };

// ---- notices -------------------------------------------------------------

export const notices = [];

export function notify(message, kind = 'info', timeoutMs = 5000) {
  notices.push({ message, kind });
  const box = element('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  document.getElementById('notices').append(box);
  if (timeoutMs) setTimeout(() => box.remove(), timeoutMs);
  return box;
}

// ---- menus ---------------------------------------------------------------

let openMenuElement = null;

export function closeMenus() {
  if (openMenuElement) openMenuElement.remove();
  openMenuElement = null;
  for (const button of document.querySelectorAll('.menubar button.open')) button.classList.remove('open');
}

// items: [{label, shortcut, action, submenu: items | () => items, checked, disabled, id}] or 'separator'.
export function showMenu(x, y, items, parent = null) {
  const menu = element('div', { class: 'menu', role: 'menu' });
  for (const item of items) {
    if (item === 'separator') {
      menu.append(element('div', { class: 'menu-separator' }));
      continue;
    }
    const row = element('div', { class: 'menu-item' + (item.disabled ? ' disabled' : ''), role: 'menuitem' },
      element('span', { class: 'menu-check' }, item.checked ? '✓' : ''),
      element('span', { class: 'menu-label' }, item.label),
      element('span', { class: 'menu-shortcut' }, item.shortcut || (item.submenu ? '▸' : '')));
    if (item.id) row.dataset.menuId = item.id;
    row.addEventListener('pointerenter', () => {
      for (const sub of menu.querySelectorAll(':scope > .menu')) sub.remove();
      if (item.submenu && !item.disabled) {
        const rect = row.getBoundingClientRect();
        const list = typeof item.submenu === 'function' ? item.submenu() : item.submenu;
        Promise.resolve(list).then((resolved) => showMenu(rect.right - 2, rect.top, resolved, menu));
      }
    });
    row.addEventListener('click', (event) => {
      event.stopPropagation();
      if (item.disabled || item.submenu) return;
      closeMenus();
      item.action?.();
    });
    menu.append(row);
  }
  if (parent) {
    parent.append(menu);
  } else {
    closeMenus();
    document.body.append(menu);
    openMenuElement = menu;
  }
  menu.style.position = 'fixed';
  menu.style.left = `${Math.min(x, window.innerWidth - 240)}px`;
  menu.style.top = `${Math.min(y, window.innerHeight - menu.offsetHeight - 4)}px`;
  return menu;
}

// ---- dialogs -------------------------------------------------------------

// Show a modal with a body element and buttons; resolves with the value of the button pressed (null on Escape).
export function dialog(title, body, buttons) {
  return new Promise((resolve) => {
    const backdrop = element('div', { class: 'backdrop' });
    const close = (value) => {
      backdrop.remove();
      document.removeEventListener('keydown', onKey, true);
      resolve(value);
    };
    const onKey = (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        close(null);
      }
    };
    const row = element('div', { class: 'dialog-buttons' });
    for (const button of buttons) {
      row.append(element('button', { class: button.primary ? 'primary' : '', onclick: () => close(button.value()) },
        button.label));
    }
    const box = element('div', { class: 'dialog', role: 'dialog', 'aria-label': title },
      element('h2', {}, title), body, row);
    backdrop.append(box);
    backdrop.addEventListener('pointerdown', (event) => {
      if (event.target === backdrop) close(null);
    });
    document.addEventListener('keydown', onKey, true);
    document.body.append(backdrop);
    box.querySelector('input, textarea, button.primary')?.focus();
    backdrop.close = close;
  });
}

export function askText(title, label, value = '') {
  const input = element('input', { type: 'text', class: 'dialog-input', 'aria-label': label });
  input.value = value;
  const body = element('label', { class: 'dialog-field' }, element('span', {}, label), input);
  const result = dialog(title, body, [
    { label: t('dialog.cancel'), value: () => null },
    { label: t('dialog.ok'), primary: true, value: () => input.value.trim() || null },
  ]);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') input.closest('.dialog').querySelector('button.primary').click();
  });
  setTimeout(() => input.select(), 0);
  return result;
}

// ---- search box ----------------------------------------------------------

// Score how well `query` matches a catalog entry: every word must match somewhere; 0 means no match.
export function matchScore(query, definition) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return 1;
  const name = nodeName(definition).toLowerCase();
  const english = (definition.display_name || '').toLowerCase();
  const type = definition.type.toLowerCase();
  const category = `${definition.category || ''} ${categoryName(definition.category)}`.toLowerCase();
  const description = `${nodeDescription(definition)} ${definition.description || ''}`.toLowerCase();
  let total = 0;
  for (const word of words) {
    let best = 0;
    for (const [field, weight] of [[name, 10], [english, 9], [type, 8], [category, 4], [description, 2]]) {
      if (field.startsWith(word)) best = Math.max(best, weight * 10);
      else if (field.includes(word)) best = Math.max(best, weight * 6);
      else if (weight >= 8 && isSubsequence(word, field)) best = Math.max(best, weight * 2);
    }
    if (!best) return 0;
    total += best;
  }
  return total;
}

function isSubsequence(needle, haystack) {
  let i = 0;
  for (const char of haystack) if (char === needle[i]) i += 1;
  return i === needle.length;
}

// Open the node search at screen point (x, y); resolves with the picked type id or null.
export function searchNodes(x, y, catalog, filter = () => true, hint = '') {
  document.querySelector('.search')?.close?.(null);
  return new Promise((resolve) => {
    const input = element('input', { type: 'search', class: 'search-input', placeholder: t('search.placeholder'),
      'aria-label': t('search.placeholder') });
    const list = element('ul', { class: 'search-results', role: 'listbox' });
    const box = element('div', { class: 'search' }, hint ? element('div', { class: 'search-hint' }, hint) : null,
      input, list);
    let results = [];
    let active = 0;

    const close = (value) => {
      if (!box.isConnected) return;
      box.remove();
      document.removeEventListener('pointerdown', outside, true);
      resolve(value);
    };
    const outside = (event) => {
      if (!box.contains(event.target)) close(null);
    };
    const render = () => {
      const query = input.value;
      results = Object.values(catalog).filter(filter)
        .map((definition) => ({ definition, score: matchScore(query, definition) }))
        .filter((item) => item.score > 0)
        .sort((a, b) => b.score - a.score || nodeName(a.definition).localeCompare(nodeName(b.definition)))
        .slice(0, 40);
      active = Math.min(active, Math.max(0, results.length - 1));
      list.replaceChildren(...results.map((item, i) => element('li', {
        class: 'search-item' + (i === active ? ' active' : ''), role: 'option', dataset: { type: item.definition.type },
        onpointerdown: (event) => {
          event.preventDefault();
          close(item.definition.type);
        },
      }, element('span', { class: 'search-name' }, nodeName(item.definition)),
      element('span', { class: 'search-category' }, categoryName(item.definition.category)),
      element('div', { class: 'search-description' }, nodeDescription(item.definition)))));
      if (!results.length) list.append(element('li', { class: 'search-empty' }, t('search.none')));
    };
    input.addEventListener('input', () => {
      active = 0;
      render();
    });
    input.addEventListener('keydown', (event) => {
      event.stopPropagation();
      if (event.key === 'ArrowDown') active = Math.min(results.length - 1, active + 1);
      else if (event.key === 'ArrowUp') active = Math.max(0, active - 1);
      else if (event.key === 'Enter') return close(results[active]?.definition.type ?? null);
      else if (event.key === 'Escape') return close(null);
      else return undefined;
      event.preventDefault();
      render();
      list.children[active]?.scrollIntoView({ block: 'nearest' });
      return undefined;
    });
    box.close = close;
    box.style.left = `${Math.max(4, Math.min(x, window.innerWidth - 340))}px`;
    box.style.top = `${Math.max(4, Math.min(y, window.innerHeight - 380))}px`;
    document.body.append(box);
    render();
    input.focus();
    setTimeout(() => document.addEventListener('pointerdown', outside, true), 0);
  });
}

// ---- text editing overlay ------------------------------------------------

// Edit text in place over the canvas. rect is in page pixels; resolves with the new text or null.
export function editText(rect, value, { multiline = false, fontSize = 13, numeric = false } = {}) {
  document.querySelector('.overlay-editor')?.finish?.(true);
  return new Promise((resolve) => {
    const field = element(multiline ? 'textarea' : 'input', { class: 'overlay-editor', spellcheck: 'false' });
    if (!multiline) field.type = 'text';
    if (numeric) field.inputMode = 'decimal';
    field.value = value;
    Object.assign(field.style, {
      left: `${rect.x}px`, top: `${rect.y}px`, width: `${rect.w}px`, height: `${rect.h}px`, fontSize: `${fontSize}px`,
    });
    let done = false;
    const finish = (commit) => {
      if (done) return;
      done = true;
      field.remove();
      resolve(commit ? field.value : null);
    };
    field.finish = finish;
    field.addEventListener('keydown', (event) => {
      event.stopPropagation();
      if (event.key === 'Escape') finish(false);
      else if (event.key === 'Enter' && (!multiline || event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        finish(true);
      }
    });
    field.addEventListener('blur', () => finish(true));
    document.body.append(field);
    field.focus();
    field.select();
  });
}
