// Languages: one JSON file per language under /static/i18n/. The language comes from the browser
// (navigator.languages) unless the user picked one, which is kept in localStorage.
"use strict";

const I18N = { lang: "en", en: {}, dict: {} };
const LANGS = ["en", "de", "nl"];

function pickLang() {
  let saved = null;
  try { saved = localStorage.getItem("twc-lang"); } catch (_) { /* storage disabled */ }
  if (saved && LANGS.includes(saved)) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const base = String(l).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

// Text for `key`, with `{name}` placeholders filled from `vars`; English when the language lacks it.
function t(key, vars) {
  let s = I18N.dict[key];
  if (s === undefined) s = I18N.en[key];
  if (s === undefined) s = key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
  return s;
}

function applyI18n(root = document) {
  for (const e of root.querySelectorAll("[data-i18n]")) e.textContent = t(e.dataset.i18n);
  for (const e of root.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of e.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      e.setAttribute(attr, t(key));
    }
  }
  document.documentElement.lang = I18N.lang;
  const desc = document.getElementById("flow-desc");
  if (desc) desc.textContent = t("flow.title");
}

async function loadLang(lang) {
  const get = async (l) => {
    const r = await fetch("/static/i18n/" + l + ".json");
    if (!r.ok) throw new Error("language file " + l + ": HTTP " + r.status);
    return r.json();
  };
  if (!Object.keys(I18N.en).length) I18N.en = await get("en");
  I18N.dict = lang === "en" ? I18N.en : await get(lang);
  I18N.lang = lang;
  applyI18n();
}

// The override select: "" follows the browser.
function wireLangSelect(onChange) {
  const sel = document.getElementById("lang");
  let saved = "";
  try { saved = localStorage.getItem("twc-lang") || ""; } catch (_) { /* storage disabled */ }
  sel.value = LANGS.includes(saved) ? saved : "";
  sel.addEventListener("change", async () => {
    try {
      if (sel.value) localStorage.setItem("twc-lang", sel.value); else localStorage.removeItem("twc-lang");
    } catch (_) { /* storage disabled: applies to this page only */ }
    await loadLang(sel.value || pickLang());
    onChange();
  });
}
