// chatd's page: searching what was said (docs/protocol.md, Searching history).
// Runs after app.js and uses its wire (SHAPES, HANDLERS, send) and its lines
// (lineElement): /search <words> [in <target>] answers FOUND lines, newest
// first, then ENDSEARCH; a result's "Show in context" asks /history for it and
// the lines before it. Every text from the wire goes in as text.
"use strict";

SHAPES.FOUND = [5, true];
SHAPES.ENDSEARCH = [1, false];

const search = {
  pending: false, // a /search is on its way: its ERR belongs to the panel
  results: [], // the answer's FOUND lines so far
  words: "",
  where: "", // "" (everywhere) or the conversation's name
  context: null, // { key, item, entries } while a result's context is on its way
};

const panel = () => $("search-results");
const PAGE = 20; // the server's FOUND lines per answer

/** Ask the server; the panel says so until the answer is there. */
function runSearch(words, where, before = null) {
  search.words = words;
  search.where = where;
  search.pending = true;
  search.results = [];
  const clauses = `${where ? ` in ${where}` : ""}${before ? ` before ${before}` : ""}`;
  send(`/search ${words}${clauses}`);
  showPanel(`Searching for “${words}”${where ? ` in ${where}` : ""}…`);
}

function showPanel(status) {
  const box = panel();
  box.hidden = false;
  $("search-status").textContent = status;
  $("search-list").replaceChildren();
}

function closePanel() {
  panel().hidden = true;
  search.pending = false;
  search.context = null;
}

/** One result: where and who, then the line as the conversation shows it. */
function resultItem(found) {
  const item = document.createElement("li");
  item.className = "result";
  const where = document.createElement("button");
  where.type = "button";
  where.className = "where";
  where.textContent = found.target;
  where.title = found.target.startsWith("#") ? `Go to ${found.target}` : `Go to your conversation with ${found.target}`;
  where.addEventListener("click", () => goTo(found.target));
  const line = document.createElement("ol");
  line.className = "lines";
  line.append(lineElement({ ...found, past: true }));
  const more = document.createElement("button");
  more.type = "button";
  more.className = "context";
  more.textContent = "Show in context";
  more.addEventListener("click", () => showContext(found, item, more));
  item.append(where, line, more);
  return item;
}

function goTo(target) {
  const key = fold(target);
  if (state.conversations.has(key)) select(key);
  else if (target.startsWith("#")) { state.asked.add(key); send(`/join ${target}`); }
  else openPrivate(target);
  $("say").focus();
}

/** The few messages before the one found, from /history, above it. */
function showContext(found, item, button) {
  if (search.context) return; // one at a time: their answers share the wire
  button.disabled = true;
  search.context = { key: fold(found.target), item, entries: [], found };
  send(`/history ${found.target} 4 before ${found.id}`);
}

const shownHistory = HANDLERS.HISTORY;
const shownEnd = HANDLERS.ENDHISTORY;
const shownError = HANDLERS.ERR;

Object.assign(HANDLERS, {
  FOUND([target, id, time, kind, nick], text) {
    search.results.push({
      target, id, time: new Date(time), kind: kind === "ACTION" ? "action" : "msg", nick, text,
      mine: fold(nick) === fold(state.nick),
    });
  },
  ENDSEARCH([count]) {
    search.pending = false;
    const found = search.results;
    const where = search.where ? ` in ${search.where}` : "";
    $("search-status").textContent = found.length
      ? `${found.length} ${found.length === 1 ? "message" : "messages"} with “${search.words}”${where}, newest first`
      : `Nothing found for “${search.words}”${where}.`;
    $("search-list").replaceChildren(...found.map(resultItem));
    if (Number(count) >= PAGE && found.length) {
      const next = document.createElement("button");
      next.type = "button";
      next.className = "older";
      next.textContent = "Older results";
      const last = found[found.length - 1].id;
      next.addEventListener("click", () => runSearch(search.words, search.where, last));
      const item = document.createElement("li");
      item.append(next);
      $("search-list").append(item);
    }
  },
  HISTORY(words, text) {
    const context = search.context;
    if (context && fold(words[0]) === context.key) {
      const [, id, time, kind, nick] = words;
      context.entries.push({ id, time: new Date(time), kind: kind === "ACTION" ? "action" : "msg", nick, text });
      return;
    }
    shownHistory(words, text);
  },
  ENDHISTORY(words) {
    const context = search.context;
    if (context && fold(words[0]) === context.key) {
      search.context = null;
      const lines = document.createElement("ol");
      lines.className = "lines context";
      for (const entry of context.entries) lines.append(lineElement({ ...entry, past: true }));
      const hit = lineElement(context.found);
      hit.classList.add("hit");
      lines.append(hit);
      context.item.querySelector(".lines").replaceWith(lines);
      return;
    }
    shownEnd(words);
  },
  ERR(words, text) {
    if (search.pending) {
      search.pending = false;
      $("search-status").textContent = text;
    } else if (search.context) {
      search.context = null; // the history could not be read: the result stays
    }
    shownError(words, text);
  },
});

// The box takes /search's own words: "link in #dev" searches #dev only.
$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typed = $("search-words").value.trim();
  if (!typed || state.phase !== "registered") return;
  const clause = typed.match(/^(.*\S)\s+in\s+(\S+)$/i);
  if (clause) runSearch(clause[1], clause[2]);
  else runSearch(typed, "");
  $("side").classList.remove("open"); // on a phone: the results are under the drawer
  $("toggle-side").setAttribute("aria-expanded", "false");
});
$("search-close").addEventListener("click", closePanel);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel().hidden) closePanel();
});
