// The autodeploy console: plain DOM, no framework. Everything the API answers (names,
// branches, commit messages, reasons) is put on the page as text (textContent), never
// parsed as HTML. The admin token lives in sessionStorage (this tab only) and goes out
// only as the Authorization header of same-origin API calls.
import { STRINGS } from "./i18n.js";

const TOKEN = "autodeploy.token";
const LANG = "autodeploy.lang";
const REFRESH_MS = 5000;

let lang = localStorage.getItem(LANG)
  || ((navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en");
let timer = null;

const main = document.getElementById("main");

function t(key, vars = {}) {
  const text = STRINGS[lang][key] ?? STRINGS.en[key] ?? key;
  return typeof text === "string" ? text.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? "")) : text;
}

// An element: `props` sets properties (`text` → textContent, `on…` → listeners,
// `attrs` → attributes); children are nodes or strings (as text).
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === "text") el.textContent = v;
    else if (k === "attrs") for (const [a, av] of Object.entries(v)) el.setAttribute(a, av);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el[k] = v;
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function toast(message) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

// A fresh Idempotency-Key (crypto.getRandomValues works on plain http too, where
// crypto.randomUUID does not exist).
function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function token() {
  return sessionStorage.getItem(TOKEN);
}

// One admin API call: `{status, body}`. A 401 signs out (the token is wrong or changed).
async function api(method, path, body, extra = {}) {
  const headers = { authorization: `Bearer ${token()}`, ...extra };
  if (body !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch (e) {
    toast(t("failed", { why: e.message }));
    throw e;
  }
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (res.status === 401 && path.startsWith("/api/")) {
    signOut(t("wrongToken"));
    throw new Error("unauthorized");
  }
  if (res.status === 503) toast(t("storeDown"));
  return { status: res.status, body: json };
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN);
  render(message);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", { value: text, attrs: { "aria-hidden": "true" }, className: "offscreen" });
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast(t("copied"));
}

function badge(result) {
  return h("span", { className: `badge ${/^[a-z_]+$/.test(result) ? result : ""}`, text: result });
}

function when(at) {
  const d = new Date(at);
  return isNaN(d) ? String(at) : d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB");
}

// Shows the API's `{"error", "field"}` next to the field it names, else in `fallback`.
function showErrors(form, answer, fallback) {
  for (const el of form.querySelectorAll(".error")) el.textContent = "";
  const body = answer.body || {};
  const message = body.error || body.reason || `HTTP ${answer.status}`;
  const slot = body.field && form.querySelector(`.error[data-field="${CSS.escape(body.field)}"]`);
  (slot || fallback).textContent = message;
  (slot ? slot.previousElementSibling : fallback)?.focus?.();
}

function field(label, input, name, hint) {
  const id = `f-${name.replace(/\W/g, "-")}`;
  input.id = id;
  input.name = name;
  const error = h("span", { className: "error", attrs: { "data-field": name, role: "alert" } });
  input.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { className: "field" },
    h("label", { htmlFor: id, text: label }), input, error,
    hint ? h("small", { id: `${id}-hint`, text: hint }) : null);
}

// --- sign in ---------------------------------------------------------------------

function signInPage(message) {
  const input = h("input", { type: "password", autocomplete: "current-password", required: true });
  const error = h("p", { className: "error", attrs: { role: "alert" }, text: message || "" });
  const form = h("form", {
    className: "card narrow",
    onsubmit: async (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN, input.value);
      const answer = await api("GET", "/api/apps?limit=1").catch(() => null);
      if (answer && answer.status === 200) route();
    },
  }, h("h1", { text: t("signIn") }), field(t("token"), input, "token", t("tokenHint")), error,
  h("button", { type: "submit", className: "primary", text: t("signIn") }));
  main.replaceChildren(form);
  input.focus();
}

// --- the app list ----------------------------------------------------------------------

async function appsPage() {
  const list = h("tbody");
  const filter = h("input", { type: "search", attrs: { "aria-label": t("filter") }, placeholder: t("filter") });
  const more = h("button", { type: "button", text: t("more"), hidden: true });
  const empty = h("p", { text: t("noApps"), hidden: true });
  const rows = [];
  let after = null;

  const applyFilter = () => {
    const q = filter.value.trim().toLowerCase();
    for (const r of rows) r.hidden = q !== "" && !r.dataset.name.includes(q);
  };
  filter.addEventListener("input", applyFilter);

  async function load() {
    const query = after ? `?limit=50&after=${encodeURIComponent(after)}` : "?limit=50";
    const answer = await api("GET", `/api/apps${query}`);
    if (answer.status !== 200) return;
    for (const app of answer.body.apps) {
      const newest = app.last_delivery;
      const last = h("td", {}, ...(newest ? [badge(newest.result), " ", when(newest.at)] : [t("none")]));
      const row = h("tr", {},
        h("td", {}, h("a", { href: `#/apps/${encodeURIComponent(app.name)}`, text: app.name })),
        h("td", { text: app.status }),
        h("td", {}, ["git", "image", "api"].filter((k) => app[k].enabled).map((k) => h("span", { className: "pill", text: k }))),
        last);
      row.dataset.name = app.name;
      rows.push(row);
      list.append(row);
    }
    after = answer.body.next;
    more.hidden = !after;
    empty.hidden = rows.length > 0;
    applyFilter();
  }
  more.addEventListener("click", load);

  main.replaceChildren(
    h("h1", { text: t("apps") }),
    filter,
    h("table", {}, h("thead", {}, h("tr", {}, [t("name"), t("status"), t("triggers"), t("lastDelivery")].map((c) => h("th", { scope: "col", text: c })))), list),
    empty, more,
    createForm());
  await load();
}

function createForm() {
  const name = h("input", { required: true, pattern: "[a-z0-9][a-z0-9-]{0,62}", autocomplete: "off" });
  const target = h("select", {}, h("option", { value: "generic", text: t("generic") }), h("option", { value: "rainbond", text: t("rainbond") }));
  const path = h("input", { placeholder: "/v1/apps/shop/deploy" });
  const serviceId = h("input", {});
  const secretKey = h("input", { type: "password", autocomplete: "off" });
  const generic = field(t("path"), path, "deploy.path");
  const rainbond = h("div", { hidden: true }, field(t("serviceId"), serviceId, "deploy.service_id"), field(t("secretKey"), secretKey, "deploy.secret_key"));
  target.addEventListener("change", () => {
    generic.hidden = target.value !== "generic";
    rainbond.hidden = target.value !== "rainbond";
  });
  const general = h("p", { className: "error", attrs: { role: "alert" } });
  const form = h("form", {
    className: "card",
    onsubmit: async (e) => {
      e.preventDefault();
      const app = name.value.trim();
      const existing = await api("GET", `/api/apps/${encodeURIComponent(app)}`);
      if (existing.status === 200) {
        showErrors(form, { status: 409, body: { error: t("exists"), field: "name" } }, general);
        return;
      }
      const deploy = target.value === "generic"
        ? { target: "generic", path: path.value.trim() }
        : { target: "rainbond", service_id: serviceId.value.trim(), secret_key: secretKey.value };
      const answer = await api("PUT", `/api/apps/${encodeURIComponent(app)}`, { deploy });
      if (answer.status === 201 || answer.status === 200) location.hash = `#/apps/${encodeURIComponent(app)}`;
      else showErrors(form, answer, general);
    },
  }, h("h2", { text: t("create") }), field(t("name"), name, "name"), field(t("target"), target, "deploy.target"),
  generic, rainbond, general, h("button", { type: "submit", className: "primary", text: t("createBtn") }));
  return form;
}

// --- one app ------------------------------------------------------------------------------

const SECRET = { git: ["git", "secret"], image: ["image", "token"], api: ["api", "secret_key"] };

async function appPage(name, picked) {
  const answer = await api("GET", `/api/apps/${encodeURIComponent(name)}`);
  if (answer.status !== 200) {
    main.replaceChildren(h("p", { className: "error", text: answer.body?.error || `HTTP ${answer.status}` }), h("a", { href: "#/", text: t("back") }));
    return;
  }
  let app = answer.body;
  const cards = h("div", { className: "cards" });
  const deliveries = h("section", { className: "card wide", attrs: { "aria-labelledby": "deliveries-title" } });
  const notify = h("section", { className: "card wide notify", attrs: { "aria-labelledby": "notify-title" } });
  const head = h("div");

  const redraw = () => {
    const changed = (next) => { app = next; redraw(); };
    head.replaceChildren(...header(app));
    cards.replaceChildren(...["git", "image", "api"].map((k) => triggerCard(app, k, changed)));
    notify.replaceChildren(...notifyCard(app, changed));
  };
  redraw();
  main.replaceChildren(h("a", { href: "#/", text: `← ${t("back")}` }), head, cards, notify, deliveries);

  const refresh = async () => {
    const d = await api("GET", `/api/apps/${encodeURIComponent(name)}/deliveries`).catch(() => null);
    if (d && d.status === 200) deliveries.replaceChildren(...deliveryTable(app, d.body.deliveries, refresh, picked));
  };
  await refresh();
  deliveries.querySelector("tr.picked")?.scrollIntoView({ block: "center" });
  timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function header(app) {
  const deploy = h("button", {
    type: "button", className: "primary", text: t("deployNow"),
    onclick: async () => {
      deploy.disabled = true;
      const answer = await api("POST", `/api/apps/${encodeURIComponent(app.name)}/deploy`, undefined, { "idempotency-key": newKey() }).finally(() => { deploy.disabled = false; });
      toast(`${answer.body?.result ?? answer.status}: ${answer.body?.reason ?? answer.body?.error ?? ""}`);
    },
  });
  const remove = h("button", {
    type: "button", className: "danger", text: t("delete"),
    onclick: async () => {
      if (!confirm(t("confirmDelete", { name: app.name }))) return;
      const answer = await api("DELETE", `/api/apps/${encodeURIComponent(app.name)}`);
      if (answer.status === 204) location.hash = "#/";
    },
  });
  return [
    h("h1", { text: app.name }),
    h("p", {}, `${t("status")}: `, h("strong", { className: "status", text: app.status }), " · ",
      t("allowed", { list: app.deploy.allowed_statuses.join(", ") })),
    h("p", { className: "actions" }, deploy, remove),
  ];
}

function triggerCard(app, kind, changed) {
  const name = encodeURIComponent(app.name);
  const on = app[kind].enabled;
  const title = t(kind);
  const switchButton = h("button", {
    type: "button", className: "switch", text: on ? t("on") : t("off"),
    attrs: { role: "switch", "aria-checked": String(on), "aria-label": t("switchLabel", { trigger: title }) },
    onclick: async () => {
      const answer = await api("POST", `/api/apps/${name}/triggers/${kind}/${on ? "disable" : "enable"}`);
      if (answer.status === 200) changed(answer.body);
      else toast(answer.body?.error || `HTTP ${answer.status}`);
    },
  });

  const [section, key] = SECRET[kind];
  const secret = app[section][key];
  let shown = false;
  const masked = "•".repeat(12);
  const url = app.hooks[kind];
  const urlText = h("code", { className: "url" });
  const secretText = h("code", { className: "secret" });
  const show = () => {
    secretText.textContent = shown ? secret : masked;
    // The image URL carries the token: masked with it.
    urlText.textContent = kind === "image" && !shown ? url.replace(secret, masked) : url;
    reveal.textContent = shown ? t("hide") : t("reveal");
    reveal.setAttribute("aria-pressed", String(shown));
  };
  const reveal = h("button", { type: "button", onclick: () => { shown = !shown; show(); } });
  show();
  const rotate = h("button", {
    type: "button", className: "danger", text: t("rotate"),
    onclick: async () => {
      if (!confirm(t("confirmRotate", { trigger: title }))) return;
      const answer = await api("POST", `/api/apps/${name}/triggers/${kind}/rotate`);
      if (answer.status === 200) changed(answer.body);
    },
  });

  const help = t(`${kind}Help`).map((line) => h("li", { text: line }));
  return h("section", { className: "card", attrs: { "aria-label": title } },
    h("div", { className: "card-head" }, h("h2", { text: title }), switchButton),
    h("div", { className: "row" }, h("span", { className: "label", text: t("url") }), urlText,
      h("button", { type: "button", text: t("copy"), attrs: { "aria-label": `${t("copy")} ${t("url")}` }, onclick: () => copy(url) })),
    h("ul", { className: "help" }, help),
    kind === "api" ? h("pre", { className: "curl", text: `curl -X POST ${url} \\\n  -H 'Authorization: Bearer ${shown ? secret : "<secret_key>"}'` }) : null,
    h("div", { className: "row" }, h("span", { className: "label", text: t("secret") }), secretText, reveal,
      h("button", { type: "button", text: t("copy"), attrs: { "aria-label": `${t("copy")} ${t("secret")}` }, onclick: () => copy(secret) }), rotate),
    settingsForm(app, kind, changed));
}

// The trigger's settings, saved with a PUT of the whole app (secrets sent back as they
// are, so they do not change).
function settingsForm(app, kind, changed) {
  const inputs = {};
  const lists = {};
  const fields = [];
  const add = (label, key, hint) => {
    const value = app[kind][key];
    inputs[key] = h("input", { value: value ?? "" });
    fields.push(field(label, inputs[key], `${kind}.${key}`, hint));
  };
  // A list of patterns, one per line (git.paths.include, git.paths.exclude).
  const addList = (label, key, hint) => {
    const value = app.git.paths?.[key] ?? [];
    lists[key] = h("textarea", { value: value.join("\n"), rows: 3, spellcheck: false });
    fields.push(field(label, lists[key], `git.paths.${key}`, hint));
  };
  if (kind === "git") {
    add(t("repo"), "repo");
    add(t("branch"), "branch", t("branchHint"));
    const word = app.git.keyword;
    add(t("keyword"), "keyword", word ? t("keywordHint", { word: `@${word}` }) : t("keywordNone"));
    add(t("tags"), "tags", t("tagsHint"));
    addList(t("pathsInclude"), "include", t("pathsIncludeHint"));
    addList(t("pathsExclude"), "exclude", t("pathsExcludeHint"));
  } else if (kind === "image") {
    add(t("imageRepo"), "repository");
    add(t("tag"), "tag");
    add(t("tagPattern"), "tag_pattern");
  } else {
    return null;
  }
  const general = h("p", { className: "error", attrs: { role: "alert" } });
  const form = h("form", {
    className: "settings",
    onsubmit: async (e) => {
      e.preventDefault();
      const body = structuredClone(app);
      delete body.name;
      delete body.hooks;
      for (const [key, input] of Object.entries(inputs)) {
        const v = input.value.trim();
        body[kind][key] = v === "" && ["tag_pattern", "repository", "tags"].includes(key) ? null : v;
      }
      if (kind === "git") {
        const lines = (area) => area.value.split("\n").map((l) => l.trim()).filter((l) => l !== "");
        body.git.paths = { include: lines(lists.include), exclude: lines(lists.exclude) };
      }
      const answer = await api("PUT", `/api/apps/${encodeURIComponent(app.name)}`, body);
      if (answer.status === 200) { toast(t("saved")); changed(answer.body); } else showErrors(form, answer, general);
    },
  }, fields, general, h("button", { type: "submit", text: t("save") }));
  return form;
}

// --- notifications and commit statuses ----------------------------------------------------

const CHANNELS = ["slack", "discord", "dingtalk", "wecom", "feishu", "webhook"];
const EVENTS = ["requested", "refused", "succeeded", "failed"];

// The app as a PUT body: what GET showed, masks included (a mask sent back keeps the
// stored URL, secret or token).
function putBody(app) {
  const body = structuredClone(app);
  delete body.name;
  delete body.hooks;
  return body;
}

async function saveApp(app, body, form, general, changed) {
  const answer = await api("PUT", `/api/apps/${encodeURIComponent(app.name)}`, body);
  if (answer.status === 200) { toast(t("saved")); changed(answer.body); return true; }
  if (form) showErrors(form, answer, general); else toast(answer.body?.error || `HTTP ${answer.status}`);
  return false;
}

// The app's channels (each with a test message and a remove button), a form to add
// one, and the commit statuses (git.report). URLs, secrets and tokens are shown as the
// API masks them: the page never holds them.
function notifyCard(app, changed) {
  const name = encodeURIComponent(app.name);
  const channels = app.notify ?? [];
  const list = channels.length
    ? h("ul", { className: "channels" }, channels.map((c, i) => h("li", { className: "row" },
        h("span", { className: "pill", text: c.type }),
        h("code", { className: "url", text: c.url }),
        h("span", { className: "events", text: c.events.map((e) => t(`event_${e}`)).join(", ") }),
        h("button", {
          type: "button", text: t("sendTest"),
          onclick: async (e) => {
            e.target.disabled = true;
            const answer = await api("POST", `/api/apps/${name}/notify/${i}/test`).finally(() => { e.target.disabled = false; });
            toast(`${answer.body?.result ?? answer.status}: ${answer.body?.reason ?? answer.body?.error ?? ""}`);
          },
        }),
        h("button", {
          type: "button", className: "danger", text: t("remove"),
          onclick: async () => {
            if (!confirm(t("confirmRemove", { type: c.type }))) return;
            const body = putBody(app);
            body.notify.splice(i, 1);
            await saveApp(app, body, null, null, changed);
          },
        }))))
    : h("p", { text: t("noChannels") });

  const n = channels.length;
  const type = h("select", {}, CHANNELS.map((c) => h("option", { value: c, text: t(`channel_${c}`) })));
  const url = h("input", { type: "url", autocomplete: "off", spellcheck: false });
  const secret = h("input", { type: "password", autocomplete: "new-password" });
  const events = EVENTS.map((e) => h("label", { className: "check" },
    h("input", { type: "checkbox", value: e, checked: true }), ` ${t(`event_${e}`)}`));
  const general = h("p", { className: "error", attrs: { role: "alert" } });
  const add = h("form", {
    className: "settings", attrs: { "aria-label": t("addChannel") },
    onsubmit: async (e) => {
      e.preventDefault();
      const body = putBody(app);
      const channel = { type: type.value, url: url.value.trim(),
        events: events.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value) };
      if (secret.value !== "") channel.secret = secret.value;
      body.notify = [...(body.notify ?? []), channel];
      if (await saveApp(app, body, add, general, changed)) { url.value = ""; secret.value = ""; }
    },
  }, h("h3", { text: t("addChannel") }),
  field(t("channelType"), type, `notify[${n}].type`),
  field(t("channelUrl"), url, `notify[${n}].url`, t("channelUrlHint")),
  field(t("channelSecret"), secret, `notify[${n}].secret`, t("channelSecretHint")),
  h("fieldset", {}, h("legend", { text: t("channelEvents") }), events,
    h("span", { className: "error", attrs: { "data-field": `notify[${n}].events`, role: "alert" } })),
  general, h("button", { type: "submit", text: t("addChannel") }));

  // Commit statuses: the provider (else from git.repo's host) and the token.
  const report = app.git.report;
  const provider = h("select", {}, ["", "github", "gitlab", "gitea", "forgejo", "bitbucket"]
    .map((p) => h("option", { value: p, text: p === "" ? t("fromRepo") : p, selected: report?.provider === p })));
  const token = h("input", { type: "password", autocomplete: "new-password",
    placeholder: report ? t("tokenKept") : "" });
  const reportError = h("p", { className: "error", attrs: { role: "alert" } });
  const statuses = h("form", {
    className: "settings", attrs: { "aria-label": t("commitStatuses") },
    onsubmit: async (e) => {
      e.preventDefault();
      const body = putBody(app);
      body.git.report = { token: token.value !== "" ? token.value : (report ? report.token : "") };
      if (provider.value !== "") body.git.report.provider = provider.value;
      if (await saveApp(app, body, statuses, reportError, changed)) token.value = "";
    },
  }, h("h3", { text: t("commitStatuses") }),
  h("p", { className: "hint", text: report ? t("statusesOn", { provider: report.provider }) : t("statusesOff") }),
  field(t("forge"), provider, "git.report.provider", t("forgeHint")),
  field(t("forgeToken"), token, "git.report.token"),
  h("span", { className: "error", attrs: { "data-field": "git.report", role: "alert" } }),
  h("span", { className: "error", attrs: { "data-field": "git.repo", role: "alert" } }),
  reportError,
  h("p", { className: "actions" }, h("button", { type: "submit", text: t("save") }),
    report ? h("button", {
      type: "button", className: "danger", text: t("turnOff"),
      onclick: async () => {
        const body = putBody(app);
        body.git.report = null;
        await saveApp(app, body, statuses, reportError, changed);
      },
    }) : null));

  return [h("h2", { id: "notify-title", text: t("notifications") }), list, h("div", { className: "cards" }, add, statuses)];
}

// The calls made after the answer (channels, commit status): a mark for each, and why
// one failed.
function noticesCell(notices) {
  if (!notices?.length) return "–";
  return notices.map((n) => h("div", { className: n.ok ? "notice ok" : "notice bad",
    text: `${n.ok ? "✓" : "✗"} ${n.to} ${t(`event_${n.event}`)}${n.ok ? "" : `: ${n.error ?? ""}`}` }));
}

// How the deploy ended, as the platform reported it: the state, its time, and a link to
// the platform's page when it gave an http(s) one (the gateway accepts no other kind).
function outcomeCell(outcome) {
  if (!outcome) return "–";
  const link = /^https?:\/\//.test(outcome.url ?? "")
    ? h("a", { href: outcome.url, text: t("details"), attrs: { rel: "noopener noreferrer", target: "_blank" } })
    : null;
  return [badge(outcome.state), " ", when(outcome.at), link ? " " : null, link,
    outcome.description ? h("div", { className: "reason", text: outcome.description }) : null];
}

function deliveryTable(app, list, refresh, picked) {
  const title = h("h2", { id: "deliveries-title", text: t("deliveries") });
  if (!list.length) return [title, h("p", { text: t("noDeliveries") })];
  const rows = list.map((d) => h("tr", { className: picked && d.id === picked ? "picked" : "" },
    h("td", { text: when(d.at) }),
    h("td", { text: d.trigger }),
    h("td", { text: d.provider ?? "–" }),
    h("td", {}, badge(d.result)),
    h("td", { className: "reason", text: d.reason }),
    h("td", { text: d.platform_status ?? "–" }),
    h("td", { className: "outcome" }, outcomeCell(d.outcome)),
    h("td", { className: "notices" }, noticesCell(d.notices)),
    h("td", { className: "id", text: d.id ?? "–" }),
    h("td", {}, d.result === "deployed" && d.id ? h("button", {
      type: "button", text: t("redeploy"),
      onclick: async () => {
        const answer = await api("POST", `/api/apps/${encodeURIComponent(app.name)}/deliveries/${encodeURIComponent(d.id)}/redeploy`, undefined, { "idempotency-key": newKey() });
        toast(`${answer.body?.result ?? answer.status}: ${answer.body?.reason ?? answer.body?.error ?? ""}`);
        refresh();
      },
    }) : null)));
  const head = [t("at"), t("trigger"), t("provider"), t("result"), t("reason"), t("platform"), t("outcome"), t("notices"), t("id"), ""];
  return [title, h("div", { className: "scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col", text: c })))), h("tbody", {}, rows)))];
}

// --- routing ---------------------------------------------------------------------------------

function route() {
  clearInterval(timer);
  timer = null;
  render();
}

function render(message) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.getElementById("lang").textContent = t("lang");
  const out = document.getElementById("signout");
  out.textContent = t("signOut");
  out.hidden = !token();
  if (!token()) return signInPage(message);
  // #/apps/{app}, or #/apps/{app}/deliveries/{id}: the app, that delivery picked out
  // (the links in notifications).
  const m = location.hash.match(/^#\/apps\/([^/]+)(?:\/deliveries\/([^/]+))?$/);
  const decode = (s) => { try { return decodeURIComponent(s); } catch { return s; } };
  const page = m ? appPage(decode(m[1]), m[2] ? decode(m[2]) : null) : appsPage();
  page.catch(() => {});
  main.focus({ preventScroll: true });
}

document.getElementById("lang").addEventListener("click", () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem(LANG, lang);
  route();
});
document.getElementById("signout").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
