() => {
  // The page's language (workbench/ui/i18n.py). Gradio shows the page in the browser's language, or in the one
  // picked under its footer's Settings → Language, and marks it on <html lang>. This keeps the language control
  // (#page-language), which every event reads, in step with it; a language picked in the control switches
  // Gradio's too and is remembered in this browser. A Chinese browser whose tag Gradio does not list ("zh",
  // "zh-Hans-CN") gets Simplified Chinese rather than English.
  const KEY = "workbench-language";
  let changeLocale = null;
  // Gradio's own language switch (the one its Settings use), from the module the page already loaded.
  const core = performance
    .getEntriesByType("resource")
    .map((entry) => entry.name)
    .find((name) => /\/assets\/core-[^/]*\.js$/.test(name));
  const loaded = core
    ? import(core)
        .then((module) => {
          changeLocale = module.changeLocale || null;
        })
        .catch(() => {})
    : Promise.resolve();
  const choices = () => [...document.querySelectorAll("#page-language input[type=radio]")];
  const ours = (tag) => (choices().some((input) => input.value === tag) ? tag : "en");
  const show = () => {
    const choice = choices().find((input) => input.value === ours(document.documentElement.lang));
    if (choice && !choice.checked) choice.click();
  };
  const wanted = () => {
    const stored = localStorage.getItem(KEY);
    if (stored && choices().some((input) => input.value === stored)) return stored;
    const tags = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
    const first = (tags[0] || "").toLowerCase();
    const simplified = /^zh(-hans.*|-cn|-sg)?$/.test(first);
    return simplified && ours(document.documentElement.lang) === "en" ? "zh-CN" : null;
  };
  const start = () => {
    const control = document.querySelector("#page-language");
    if (!control || !choices().length) {
      setTimeout(start, 100);
      return;
    }
    new MutationObserver(show).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
    control.addEventListener("change", (event) => {
      if (!event.isTrusted || !event.target.value) return; // our own clicks (show) are not a person's choice
      localStorage.setItem(KEY, event.target.value);
      if (changeLocale) changeLocale(event.target.value);
    });
    loaded.then(() => {
      const language = wanted();
      if (language && language !== document.documentElement.lang && changeLocale) changeLocale(language);
      show();
    });
  };
  start();
}
