// chatd's page, one person on several devices (docs/protocol.md, Devices
// (version 3)): logging in with a password at the nickname prompt, AWAY beside
// names, and ID lines kept with the message they come before. Loaded after
// app.js (both deferred, in order), whose globals it extends; every wire text
// still goes into the page as text.
"use strict";

// AWAY <nick> [<text>]: parsed here (the text may be absent, not only empty).
// ID <target> <id> <time>: the id of the MSG, ACTION or PRIV right after it.
SHAPES.AWAY = [0, true];
SHAPES.ID = [3, false];

const devices = {
  password: "", // the password of this page's login: in memory only, never stored
  away: new Map(), // folded nick -> away text
  typed: false, // the login form was sent (not a reload going back in)
};
// Set while this page is logged in with a password: a reload then asks for it
// again instead of taking the nickname unidentified. Never the password itself.
const LOGIN_FLAG = "chatd.login";

// -- logging in at the nickname prompt ---------------------------------------

const baseSendNick = sendNick;
sendNick = function sendNickOrLogIn() {
  if (state.password) {
    devices.password = state.password; // app.js's WELCOME must not /identify again
    state.password = "";
  }
  if (!devices.password && !devices.typed && localStorage.getItem(LOGIN_FLAG)) {
    // A reload of a page that had logged in: the password is not kept, ask for it.
    state.nickSent = false;
    showLogin(`Give your password to log in again as ${state.wanted}.`);
    $("password").focus();
    return;
  }
  if (!devices.password) { baseSendNick(); return; }
  state.nickSent = true;
  state.refusal = null;
  send(`/identify ${state.wanted} ${devices.password}`);
  $("login-status").textContent = `Logging in as ${state.wanted}…`;
};

// The form's submit, seen before app.js's own listener (capture on the document).
document.addEventListener("submit", (event) => {
  if (event.target.id !== "nick-form") return;
  devices.typed = true;
  devices.password = "";
  if (!$("password").value) localStorage.removeItem(LOGIN_FLAG);
}, true);

const LOGIN_REFUSALS = {
  "auth-failed": "Wrong password, or no account of that name. Try again, or leave the password empty to join without logging in.",
  "too-many-devices": null, // the server's words say it best
  throttled: null,
  "bad-args": null,
};

const baseHandlers = { ...HANDLERS };

HANDLERS.NICK = function (words, text) {
  // /ids on was sent at HELLO (app.js), once per connection, before the nickname.
  const refused = state.refusal !== null && state.phase !== "registered";
  baseHandlers.NICK(words, text);
  if (refused && devices.loginRefused) {
    devices.loginRefused = false;
    $("password").focus();
  }
};

HANDLERS.ERR = function ([code], text) {
  if (state.phase !== "registered" && code in LOGIN_REFUSALS && devices.password) {
    // The nickname prompt comes again after it: the login form shows why.
    state.refusal = LOGIN_REFUSALS[code] || text;
    devices.loginRefused = true;
    if (code === "auth-failed") devices.password = "";
    note(server(), "error", text);
    return;
  }
  baseHandlers.ERR([code], text);
};

HANDLERS.WELCOME = function (words, text) {
  // A new connection: who is away comes again, after each JOIN (docs/protocol.md,
  // Away on join), so what the last connection heard is forgotten.
  devices.away.clear();
  if (devices.password) localStorage.setItem(LOGIN_FLAG, "1");
  else if (devices.typed) localStorage.removeItem(LOGIN_FLAG);
  devices.typed = false;
  baseHandlers.WELCOME(words, text);
  if (devices.password) {
    // Logged in at the prompt: identified from the start (no ACCOUNT line comes).
    state.identified = true;
    $("account-form").hidden = true;
    renderAccount();
    privateBackfill();
  }
};


// /quit forgets the login: the next visit starts at the form.
const baseCommand = command;
command = function commandWithLogout(text, conv) {
  if (/^\/quit\b/i.test(text)) {
    devices.password = "";
    localStorage.removeItem(LOGIN_FLAG);
  }
  return baseCommand(text, conv);
};

// -- AWAY: a dimmed name with the reason, and a line where one expects it ----

HANDLERS.AWAY = function (_, rest) {
  const cut = rest.indexOf(" ");
  const nick = cut < 0 ? rest : rest.slice(0, cut);
  const text = cut < 0 ? "" : rest.slice(cut + 1);
  if (!nick) return;
  const key = fold(nick);
  const was = devices.away.get(key);
  if (text) devices.away.set(key, text);
  else devices.away.delete(key);
  if (key === fold(state.nick)) {
    if (text !== (was || "")) {
      note(currentConv(), "info", text ? `You are marked away: ${text}` : "You are back.");
    }
  } else {
    // Said to us after a private message to them, or while we talk with them.
    const chat = state.conversations.get(key);
    if (chat && chat.kind === "private" && text !== (was || "")) {
      note(chat, "info", text ? `${nick} is away: ${text}` : `${nick} is back.`);
    }
  }
  renderMembers();
};

HANDLERS.QUIT = function (words, text) {
  devices.away.delete(fold(words[0] || ""));
  baseHandlers.QUIT(words, text);
};

HANDLERS.RENAME = function ([old, nick]) {
  const text = devices.away.get(fold(old));
  if (text !== undefined) {
    devices.away.delete(fold(old));
    devices.away.set(fold(nick), text);
  }
  baseHandlers.RENAME([old, nick]);
};

const baseRenderMembers = renderMembers;
renderMembers = function renderMembersWithAway() {
  baseRenderMembers();
  for (const button of $("member-list").querySelectorAll("button.member")) {
    const text = devices.away.get(fold(button.dataset.nick));
    if (text === undefined) continue;
    button.classList.add("away");
    button.title = `${button.dataset.nick} is away: ${text}`;
    const label = button.getAttribute("aria-label").replace(/: actions$/, "");
    button.setAttribute("aria-label", `${label}, away: ${text}: actions`);
  }
};
