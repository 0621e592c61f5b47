// Message tables: every string the user reads comes from web/i18n/<language>.json.

export const LANGUAGES = [
  { code: 'en', label: 'English' },
  { code: 'zh-CN', label: '简体中文' },
];

const STORAGE_KEY = 'nodegraph.language';
let messages = {};
let fallback = {};
let current = 'en';

async function fetchTable(code) {
  const response = await fetch(`i18n/${code}.json`);
  if (!response.ok) throw new Error(`message table ${code} could not be loaded (HTTP ${response.status})`);
  return response.json();
}

// Pick the saved choice, else the first browser language we have a table for, else English.
export function preferredLanguage() {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved && LANGUAGES.some((lang) => lang.code === saved)) return saved;
  for (const candidate of navigator.languages || [navigator.language]) {
    const lower = String(candidate).toLowerCase();
    if (lower.startsWith('zh')) return 'zh-CN';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

export async function setLanguage(code, remember = false) {
  if (!Object.keys(fallback).length) fallback = await fetchTable('en');
  messages = code === 'en' ? fallback : await fetchTable(code);
  current = code;
  document.documentElement.lang = code;
  if (remember) localStorage.setItem(STORAGE_KEY, code);
  translatePage(document);
}

export function language() {
  return current;
}

// Look up a message and fill its {placeholders}; a missing key shows itself so it gets noticed.
export function t(key, vars = {}) {
  const text = messages[key] ?? fallback[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

// Fill elements marked data-i18n (text), data-i18n-title and data-i18n-placeholder.
export function translatePage(root) {
  for (const element of root.querySelectorAll('[data-i18n]')) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll('[data-i18n-title]')) element.title = t(element.dataset.i18nTitle);
  for (const element of root.querySelectorAll('[data-i18n-placeholder]')) {
    element.placeholder = t(element.dataset.i18nPlaceholder);
  }
}

// Node catalog entries may carry translations: {"zh-CN": {"display_name", "description"}}.
export function nodeName(definition) {
  return definition?.translations?.[current]?.display_name ?? definition?.display_name ?? definition?.type ?? '';
}

// Categories have message keys `category.<name>`; a category without one shows as it is.
export function categoryName(category) {
  if (!category) return '';
  const key = `category.${category}`;
  const text = t(key);
  return text === key ? category : text;
}

export function nodeDescription(definition) {
  return definition?.translations?.[current]?.description ?? definition?.description ?? '';
}
