// chatd's page: the line protocol (docs/protocol.md) over a WebSocket, one line per
// message. Every text from the wire goes into the page as text (textContent),
// never as HTML.
"use strict";

// -- the wire ---------------------------------------------------------------

// docs/protocol.md, Server to client: one-word arguments, then (maybe) free text.
const SHAPES = {
  HELLO: [1, true], NICK: [0, true], WELCOME: [1, true], MSG: [2, true],
  ACTION: [2, true], PRIV: [2, true], JOIN: [2, false], PART: [2, true],
  QUIT: [1, true], RENAME: [2, false], INFO: [0, true], ERR: [1, true],
  BYE: [0, true], HISTORY: [5, true], ENDHISTORY: [2, false],
  // Rooms people run and accounts (docs/protocol.md, Rooms people run).
  TOPIC: [2, true], OP: [3, false], DEOP: [3, false], VOICE: [3, false],
  DEVOICE: [3, false], BAN: [3, false], UNBAN: [3, false], MODE: [3, true],
  KICK: [3, true], INVITE: [2, false], MODES: [2, true], ACCOUNT: [2, false],
  // Server bans (docs/protocol.md, Server bans): /klines' answer.
  KLINE: [4, true], ENDKLINES: [1, false],
  // Version 3: message ids (after /ids on), the account's read markers;
  // deleting messages, and typing, reactions and replies (/tags on).
  ID: [3, false], READ: [2, false], DELETED: [3, true],
  TYPING: [3, false], REACT: [3, true], REPLY: [2, false],
};
const LISTS = new Set(["USERS", "ROOMS", "OPS", "VOICES", "BANS"]);

/** Split a server line by its verb's shape; null for a verb we do not know. */
function parseLine(raw) {
  const space = raw.indexOf(" ");
  const verb = space < 0 ? raw : raw.slice(0, space);
  const rest = space < 0 ? "" : raw.slice(space + 1);
  if (LISTS.has(verb)) {
    return { verb, words: rest ? rest.split(" ").filter(Boolean) : [], text: "" };
  }
  const shape = SHAPES[verb];
  if (!shape) return null;
  const [count, hasText] = shape;
  const words = [];
  let tail = rest;
  for (let i = 0; i < count; i++) {
    const cut = tail.indexOf(" ");
    if (cut < 0) {
      if (i !== count - 1 || hasText || !tail) return null;
      words.push(tail);
      tail = "";
      break;
    }
    words.push(tail.slice(0, cut));
    tail = tail.slice(cut + 1);
  }
  return { verb, words, text: hasText ? tail : "" };
}

/** Names compare as the server does: NFKC, then case folded (near enough). */
const fold = (name) => name.normalize("NFKC").toLowerCase();

const LOBBY = "#lobby";
const SERVER = "*server";
const KEEP_LINES = 2000; // per conversation
const HISTORY_PAGE = 50;

// -- state ------------------------------------------------------------------

const state = {
  socket: null,
  phase: "idle", // idle, connecting, nick (asked for one), registered, quitting
  nick: "", // our nickname once WELCOME says so
  wanted: localStorage.getItem("chatd.nick") || "",
  nickSent: false,
  refusal: null,
  serverName: "chatd",
  conversations: new Map(), // key (folded name, or SERVER) -> conversation
  current: SERVER,
  serverRoom: null, // where a plain line goes on the server's side
  switching: 0, // /joins sent to make a room current: their INFO is not shown
  asked: new Set(), // rooms the user asked to join: shown once JOIN comes
  askedPrivate: null, // a /msg the user typed: its conversation is shown
  whoShown: new Set(), // rooms whose next USERS the user asked to see
  attempt: 0,
  retryTimer: null,
  settleTimer: null,
  bye: "",
  everRegistered: false,
  restored: false, // the last visit's conversations are back (once a page)
  identified: false,
  liveId: null, // the ID line just received: { key, id, time } of the MSG/ACTION/PRIV after it
  readIds: new Map(), // the account's markers by key, for conversations not open yet
  readTimer: null,
  password: "", // typed on the first screen: sent once with /identify, then forgotten
  notify: localStorage.getItem("chatd.notify") === "on",
};

const $ = (id) => document.getElementById(id);

function conversation(key, name, kind) {
  let conv = state.conversations.get(key);
  if (!conv) {
    const list = document.createElement("ol");
    list.className = "lines";
    conv = {
      key, name, kind, list, unread: 0, mentions: 0, joined: false,
      members: new Map(), membersFresh: true, ids: new Set(),
      byId: new Map(), typing: new Map(), // lines by message id; who is typing
      pending: [], oldest: null, historyDone: false, loadingOlder: false,
      rejoined: false, lastLive: null,
      // Rooms people run: the topic, who is marked, why we are out, if we are.
      topic: "", topicBy: "", ops: new Set(), voiced: new Set(), modes: null,
      kicked: "", justJoined: false, kicks: new Set(),
      // Read markers (docs/protocol.md, Read markers and catch-up): the
      // messages shown with their ids, the account's marker, the last /read sent.
      seen: [], readId: state.readIds.get(key) || 0, sentRead: 0,
    };
    state.conversations.set(key, conv);
    renderSide();
  }
  return conv;
}

function server() {
  return conversation(SERVER, state.serverName, "server");
}

const currentConv = () => state.conversations.get(state.current) || server();

// -- output: sending, paced under the server's flood limits ------------------

// chatd takes a burst of 10 lines, then 2 a second; stay a little below.
// What the user types goes before rejoins waiting in the background.
const pacer = { tokens: 8, burst: 8, rate: 1.8, fore: [], back: [], timer: null, stamp: 0 };

function send(text) {
  pacer.fore.push(text);
  pump();
}

function sendBackground(text) {
  pacer.back.push(text);
  pump();
}

function pump() {
  const now = performance.now() / 1000;
  pacer.tokens = Math.min(pacer.burst, pacer.tokens + (now - pacer.stamp) * pacer.rate);
  pacer.stamp = now;
  const open = state.socket && state.socket.readyState === WebSocket.OPEN;
  while (open && pacer.tokens >= 1 && (pacer.fore.length || pacer.back.length)) {
    pacer.tokens -= 1;
    state.socket.send(pacer.fore.length ? pacer.fore.shift() : pacer.back.shift());
  }
  if (open && (pacer.fore.length || pacer.back.length) && !pacer.timer) {
    const wait = Math.ceil(((1 - pacer.tokens) / pacer.rate) * 1000);
    pacer.timer = setTimeout(() => { pacer.timer = null; pump(); }, wait);
  }
}

function resetPacer() {
  pacer.fore = [];
  pacer.back = [];
  pacer.tokens = pacer.burst;
  pacer.rate = 1.8;
  clearTimeout(pacer.timer);
  pacer.timer = null;
}

// -- connecting -------------------------------------------------------------

function socketUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function connect() {
  clearTimeout(state.retryTimer);
  state.retryTimer = null;
  state.phase = "connecting";
  state.bye = "";
  state.nickSent = false;
  setStatus("Connecting…");
  const socket = new WebSocket(socketUrl());
  state.socket = socket;
  socket.onmessage = (event) => {
    if (socket !== state.socket) return;
    if (typeof event.data === "string") received(event.data);
  };
  socket.onclose = () => {
    if (socket === state.socket) lost();
  };
}

function lost() {
  state.socket = null;
  resetPacer();
  clearTimeout(state.settleTimer);
  const wasRegistered = state.phase === "registered";
  for (const conv of state.conversations.values()) conv.joined = false;
  state.serverRoom = null;
  if (state.phase === "quitting") {
    state.phase = "idle";
    showLogin("You left the chat.");
    return;
  }
  state.phase = "idle";
  // Back off: 1, 2, 4 ... 30 seconds, and start over once a connection lasted.
  const delay = Math.min(30, 2 ** state.attempt) * (0.8 + Math.random() * 0.4);
  state.attempt += 1;
  const why = state.bye ? `Disconnected: ${state.bye}` : "Connection lost.";
  const seconds = Math.round(delay);
  if (wasRegistered) note(currentConv(), "error", `${why} Reconnecting in ${seconds} s…`);
  setStatus(`${why} Reconnecting in ${seconds} s…`);
  $("login-status").textContent = state.everRegistered || state.wanted
    ? `${why} Trying again in ${seconds} s…` : "";
  state.retryTimer = setTimeout(connect, delay * 1000);
}

function setStatus(text) {
  $("status").textContent = text;
  if (state.phase !== "registered") $("login-status").textContent = text;
}

// -- server lines -----------------------------------------------------------

function received(raw) {
  const line = parseLine(raw);
  if (!line) {
    note(server(), "info", raw); // a verb this page does not know: shown, as text
    return;
  }
  const handler = HANDLERS[line.verb];
  if (handler) handler(line.words, line.text);
}

const HANDLERS = {
  HELLO([name], text) {
    // Ids on live messages (what reactions, replies, deletions and /read
    // name), and typing, reactions and replies themselves (docs/protocol.md);
    // allowed before a nickname, so sent once here for the connection.
    send("/ids on");
    send("/tags on");
    state.serverName = name;
    server().name = name;
    note(server(), "info", text);
    renderSide();
  },
  NICK(_, text) {
    if (state.phase === "registered") return;
    state.phase = "nick";
    if (state.refusal !== null) {
      showLogin("", state.refusal);
      state.refusal = null;
      state.nickSent = false;
    } else if (state.nickSent) {
      state.nickSent = false;
      showLogin("", "The server asked for a nickname again.");
    } else if (state.wanted) {
      sendNick();
    } else {
      showLogin(text);
    }
  },
  WELCOME([nick], text) {
    state.nick = nick;
    state.phase = "registered";
    state.everRegistered = true;
    localStorage.setItem("chatd.nick", nick);
    state.wanted = nick;
    note(server(), "info", text);
    if (state.password) {
      send(`/identify ${state.password}`); // docs/protocol.md, Accounts
      state.password = "";
    }
    state.identified = false;
    renderAccount();
    if (!state.restored) restoreSession();
    showChat();
    setStatus(`Connected as ${nick}`);
    state.settleTimer = setTimeout(() => { state.attempt = 0; }, 60000);
    // Back into the rooms we were in (#lobby the server joins by itself).
    for (const conv of state.conversations.values()) {
      if (conv.kind === "room" && conv.key !== fold(LOBBY) && !conv.kicked) {
        conv.rejoined = true;
        sendBackground(`/join ${conv.name}`);
      }
    }
    const lobby = state.conversations.get(fold(LOBBY));
    if (lobby) lobby.rejoined = true;
  },
  DELETED([target, id, by], text) { deleted(target, id, by, text); },
  MSG([room, nick], text) { said(room, nick, text, "msg"); },
  REPLY([target, id]) { tagged.replies.set(fold(target), id); },
  TYPING([target, nick, typing]) { typingShown(target, nick, typing); },
  REACT([target, nick, id], text) { reacted(target, nick, id, text); },
  ACTION([room, nick], text) { said(room, nick, text, "action"); },
  PRIV([from, to], text) {
    const mine = fold(from) === fold(state.nick);
    const other = mine ? to : from;
    const known = state.conversations.has(fold(other));
    const conv = conversation(fold(other), other, "private");
    conv.name = other;
    if (!known) saveSession();
    const action = text.startsWith(`* ${from} `);
    stopTyping(conv, from);
    add(conv, {
      kind: action ? "action" : "msg", nick: from,
      text: action ? text.slice(from.length + 3) : text, mine,
      id: liveId(other)?.id ?? null,
      replyTo: takeReply(to),
    });
    if (mine && state.askedPrivate === conv.key) {
      state.askedPrivate = null;
      select(conv.key);
    }
    if (!mine) alertUser(conv, `${from} (private)`, text);
  },
  JOIN([room, nick]) {
    const conv = conversation(fold(room), room, "room");
    conv.name = room;
    if (fold(nick) === fold(state.nick)) {
      conv.joined = true;
      conv.kicked = "";
      conv.justJoined = true; // a TOPIC before the /who answer was already set
      state.serverRoom = conv.key;
      conv.members = new Map();
      conv.ops.clear();
      conv.voiced.clear();
      conv.membersFresh = false;
      conv.modes = null;
      send(`/who ${room}`);
      send(`/mode ${room}`);
      saveSession();
      if (state.asked.delete(conv.key) || state.current === SERVER) select(conv.key);
      else renderSide();
    } else {
      addMember(conv, nick);
      note(conv, "event", `${nick} joined`);
    }
  },
  PART([room, nick], text) {
    const conv = state.conversations.get(fold(room));
    if (!conv) return;
    const kicked = conv.kicks.delete(fold(nick)); // the KICK said why already
    if (fold(nick) === fold(state.nick)) {
      conv.joined = false;
      if (state.serverRoom === conv.key) state.serverRoom = fold(LOBBY);
      if (kicked) {
        // The tab stays, greyed, with the reason; no rejoin by itself.
        conv.members = new Map();
        conv.ops.clear();
        conv.voiced.clear();
        renderSide();
        if (conv.key === state.current) { renderMembers(); renderHeader(); }
        saveSession();
      } else {
        removeConv(conv.key);
      }
    } else {
      forgetMember(conv, nick);
      if (!kicked) note(conv, "event", `${nick} left${text ? ` (${text})` : ""}`);
      if (conv.key === state.current) renderMembers();
    }
  },
  QUIT([nick], text) {
    const key = fold(nick);
    for (const conv of state.conversations.values()) {
      const member = conv.members.has(key);
      forgetMember(conv, nick);
      if (member || (conv.kind === "private" && conv.key === key)) {
        note(conv, "event", `${nick} quit${text ? ` (${text})` : ""}`);
      }
    }
    renderMembers();
  },
  RENAME([old, nick]) {
    if (fold(old) === fold(state.nick)) {
      state.nick = nick;
      state.wanted = nick;
      localStorage.setItem("chatd.nick", nick);
      setStatus(`Connected as ${nick}`);
    }
    for (const conv of state.conversations.values()) {
      if (conv.members.delete(fold(old))) {
        conv.members.set(fold(nick), nick);
        for (const group of [conv.ops, conv.voiced]) {
          if (group.delete(fold(old))) group.add(fold(nick));
        }
        note(conv, "event", `${old} is now ${nick}`);
      }
    }
    const chat = state.conversations.get(fold(old));
    if (chat && chat.kind === "private" && !state.conversations.has(fold(nick))) {
      state.conversations.delete(chat.key);
      chat.key = fold(nick);
      chat.name = nick;
      state.conversations.set(chat.key, chat);
      if (state.current === fold(old)) state.current = chat.key;
      note(chat, "event", `${old} is now ${nick}`);
    }
    renderSide();
    renderMembers();
  },
  USERS([room, ...nicks]) {
    const conv = state.conversations.get(fold(room || ""));
    if (conv) {
      if (!conv.membersFresh) {
        conv.members = new Map();
        conv.ops.clear(); // docs/protocol.md: marks reset with each USERS answer
        conv.voiced.clear();
        conv.membersFresh = true;
      }
      conv.justJoined = false;
      for (const nick of nicks) conv.members.set(fold(nick), nick);
      if (conv.key === state.current) renderMembers();
    }
    if (state.whoShown.has(fold(room || ""))) {
      note(currentConv(), "info", `In ${room}: ${nicks.join(", ")}`);
    }
  },
  ROOMS(rooms) {
    const spelled = rooms.map((item) => {
      const cut = item.lastIndexOf(":");
      return cut < 0 ? item : `${item.slice(0, cut)} (${item.slice(cut + 1)})`;
    });
    note(currentConv(), "info", `Rooms: ${spelled.join(", ")}`);
  },
  INFO(_, text) {
    if (/^(Message ids|Typing, reactions and replies) are on/.test(text)) return; // ours
    const reserved = /^(\S+) is a registered nickname\. If it is yours, identify/.exec(text);
    if (reserved && fold(reserved[1]) === fold(state.nick) && !state.identified) {
      accountForm("identify", `${reserved[1]} is registered. If it is yours, give its password; if not, you will get a guest name.`);
    }
    if (text.startsWith("Message ids are on")) return; // our own /ids on
    if (state.switching > 0 && text.startsWith("You are already in ")) {
      state.switching -= 1; // our own /join to make a room current
      return;
    }
    note(state.phase === "registered" ? currentConv() : server(), "info", text);
  },
  ERR([code], text) {
    if (typingRefused(code, text)) return;
    if (state.phase !== "registered" && (code === "nick-taken" || code === "nick-invalid")) {
      state.refusal = text; // the NICK line after it asks again
      return;
    }
    if (code === "flood") pacer.rate = 0.9;
    if (!$("account-form").hidden && ACCOUNT_REFUSALS.has(code)) $("account-label").textContent = text;
    note(state.phase === "registered" ? currentConv() : server(), "error", text);
    if (state.phase !== "registered") $("nick-error").textContent = text;
  },
  BYE(_, text) {
    state.bye = text;
  },
  HISTORY([room, id, time, kind, nick], text) {
    const conv = conversation(fold(room), room, room.startsWith("#") ? "room" : "private");
    // Version 3: a private message's kind is PRIV, an action "* sender text".
    const action = kind === "ACTION" || (kind === "PRIV" && text.startsWith(`* ${nick} `));
    const shown = kind === "PRIV" && action ? text.slice(nick.length + 3) : text;
    conv.pending.push({ id, room, time: new Date(time), kind: action ? "action" : "msg", nick, text: shown });
  },
  ID([target, id, time]) {
    state.liveId = { key: fold(target), id, time: new Date(time) };
  },
  READ([target, id]) {
    const key = fold(target);
    state.readIds.set(key, Math.max(state.readIds.get(key) || 0, Number(id)));
    const conv = state.conversations.get(key);
    if (!conv || Number(id) <= conv.readId) return;
    conv.readId = Number(id);
    conv.sentRead = Math.max(conv.sentRead, conv.readId);
    recount(conv);
  },
  ENDHISTORY([room, count]) {
    const conv = state.conversations.get(fold(room));
    if (conv) history(conv, Number(count));
  },
  TOPIC([room, by], text) {
    const conv = roomConv(room);
    if (!conv) return;
    // Right after our JOIN (or asked with /topic) it is the topic as it stands,
    // not news (docs/protocol.md, What a client sees).
    const standing = conv.justJoined || (text === conv.topic && by === conv.topicBy);
    conv.topic = text;
    conv.topicBy = by;
    if (standing) note(conv, "info", text ? `Topic: ${text} (set by ${by})` : "No topic.");
    else note(conv, "event", text ? `${by} set the topic: ${text}` : `${by} cleared the topic`);
    if (conv.key === state.current) renderHeader();
  },
  OP(words) { marked("OP", words); },
  DEOP(words) { marked("DEOP", words); },
  VOICE(words) { marked("VOICE", words); },
  DEVOICE(words) { marked("DEVOICE", words); },
  OPS([room, ...nicks]) { marks(room, "ops", nicks); },
  VOICES([room, ...nicks]) { marks(room, "voiced", nicks); },
  BAN([room, mask, by]) {
    const conv = roomConv(room);
    if (conv) note(conv, "event", `${by} banned ${mask}`);
  },
  UNBAN([room, mask, by]) {
    const conv = roomConv(room);
    if (conv) note(conv, "event", `${by} lifted the ban on ${mask}`);
  },
  MODE([room, by, change], text) {
    const conv = roomConv(room);
    if (!conv) return;
    if (conv.modes !== null && change[1]) {
      const letters = new Set(conv.modes);
      letters[change[0] === "+" ? "add" : "delete"](change[1]);
      conv.modes = [...letters].join("");
    }
    note(conv, "event", `${by} ${modeText(change, text)}`);
    if (conv.key === state.current) renderHeader();
  },
  KICK([room, nick, by], text) {
    const conv = roomConv(room);
    if (!conv) return;
    conv.kicks.add(fold(nick));
    if (fold(nick) === fold(state.nick)) {
      conv.kicked = `${by} put you out: ${text}`;
      note(conv, "error", `${by} put you out of ${room}: ${text}. /join ${room} to go back (if you may).`);
    } else {
      note(conv, "event", `${by} put ${nick} out: ${text}`);
    }
  },
  INVITE([room, by]) {
    note(currentConv(), "info", `${by} invites you to ${room}: /join ${room}`);
  },
  BANS([room, ...masks]) {
    note(currentConv(), "info", `Banned from ${room}: ${masks.join(", ") || "nobody"}`);
  },
  KLINE([mask, by, time, expires], text) {
    const until = expires === "permanent" ? "for good" : `until ${new Date(expires).toLocaleString()}`;
    note(currentConv(), "info", `Server ban ${mask} by ${by} ${until}: ${text}`);
  },
  ENDKLINES([count]) {
    note(currentConv(), "info", `${count} server ban${count === "1" ? "" : "s"}.`);
  },
  MODES([room, modes], text) {
    const conv = roomConv(room);
    if (conv && conv.modes === null) {
      conv.modes = modes.replace(/^\+/, ""); // the quiet /mode sent on joining
      if (conv.key === state.current) renderHeader();
      return;
    }
    note(currentConv(), "info", `${room} modes: ${modes} ${text}`.trim());
  },
  ACCOUNT([nick, account]) {
    if (fold(nick) !== fold(state.nick)) return;
    state.identified = account !== "*";
    if (state.identified) $("account-form").hidden = true;
    renderAccount();
    note(currentConv(), "info", state.identified
      ? `You are identified as ${account}.` : "You are not identified any more.");
    if (state.identified) privateBackfill();
  },
};

/** The room conversation a room-running line is about, if we have it. */
function roomConv(room) {
  const conv = state.conversations.get(fold(room || ""));
  return conv && conv.kind === "room" ? conv : null;
}

/** OP, DEOP, VOICE, DEVOICE: change a mark and say it in words. */
function marked(verb, [room, nick, by]) {
  const conv = roomConv(room);
  if (!conv) return;
  const group = verb.endsWith("OP") ? conv.ops : conv.voiced;
  if (verb.startsWith("DE")) group.delete(fold(nick));
  else group.add(fold(nick));
  const who = fold(nick) === fold(state.nick) ? "you" : nick;
  const what = {
    OP: `made ${who} an operator`, DEOP: `took operator status from ${who}`,
    VOICE: `gave ${who} a voice`, DEVOICE: `took the voice from ${who}`,
  }[verb];
  note(conv, "event", `${by} ${what}`);
  if (conv.key === state.current) { renderMembers(); renderHeader(); }
}

function marks(room, group, nicks) {
  const conv = roomConv(room);
  if (!conv) return;
  for (const nick of nicks) conv[group].add(fold(nick));
  if (conv.key === state.current) { renderMembers(); renderHeader(); }
}

function forgetMember(conv, nick) {
  conv.members.delete(fold(nick));
  conv.ops.delete(fold(nick));
  conv.voiced.delete(fold(nick));
}

// As chatd-tk words them (chatd/client/conversations.py, MODE_TEXT).
const MODE_TEXT = {
  i: ["made the room invite-only", "opened the room to everyone"],
  k: ["set a key: {}", "took the key away"],
  l: ["limited the room to {} members", "lifted the member limit"],
  m: ["made the room moderated", "let everyone speak again"],
  n: ["closed the room to messages from outside", "let outsiders speak to it"],
  s: ["made the room secret", "made the room public"],
  t: ["kept the topic to operators", "let everyone set the topic"],
};

function modeText(change, argument) {
  const texts = MODE_TEXT[change.slice(1, 2)];
  if (!texts) return `set ${change} ${argument}`.trim();
  return texts[change.startsWith("+") ? 0 : 1].replace("{}", argument);
}

const isOp = (conv) => conv.kind === "room" && conv.joined && conv.ops.has(fold(state.nick));

// docs/protocol.md, Accounts: the refusals the password bar repeats.
const ACCOUNT_REFUSALS = new Set([
  "auth-failed", "bad-password", "throttled", "already-registered", "unregistered", "bad-args",
]);

/** The password bar over the input: identify, or register the nickname. */
function accountForm(mode, label) {
  const form = $("account-form");
  form.dataset.mode = mode;
  $("account-label").textContent = label;
  $("account-again").hidden = mode !== "register";
  $("account-password").autocomplete = mode === "register" ? "new-password" : "current-password";
  $("account-go").textContent = mode === "register" ? "Register" : "Identify";
  $("account-password").value = "";
  $("account-again").value = "";
  form.hidden = false;
  $("account-password").focus();
}

function renderAccount() {
  $("register").hidden = state.identified || state.phase !== "registered";
}

function addMember(conv, nick) {
  conv.members.set(fold(nick), nick);
  if (conv.key === state.current) renderMembers();
}

function sendNick() {
  state.nickSent = true;
  state.refusal = null;
  send(`NICK ${state.wanted}`);
  $("login-status").textContent = `Asking for the nickname ${state.wanted}…`;
}

/** What the ID line just before this message said of it ({ id, time }), if it
 *  was for target; null if none. */
function liveId(target) {
  const live = state.liveId;
  state.liveId = null;
  return live && live.key === fold(target) ? live : null;
}

/** Unread counts and the "New messages" line from the account's marker. */
function recount(conv) {
  let unread = 0;
  let first = null;
  for (const item of conv.seen) {
    if (item.id > conv.readId && !item.mine) {
      unread += 1;
      first = first || item.element;
    }
  }
  if (conv.key === state.current && document.visibilityState === "visible") {
    unread = 0; // on screen: read here, and the marker follows (markRead)
    if (conv.seen.length) markRead();
  }
  conv.unread = unread;
  if (!unread) conv.mentions = 0;
  conv.firstUnread = first;
  if (!unread) conv.list.querySelector(".divider.unread-from")?.remove();
  renderSide();
}

/** The conversation on screen is read: move the account's marker (/read), once
 * a second at most, only where it moves it forward. */
function markRead() {
  if (state.readTimer !== null || !state.identified) return;
  state.readTimer = setTimeout(() => {
    state.readTimer = null;
    const conv = currentConv();
    if (document.visibilityState !== "visible" || !conv.seen.length) return;
    const last = conv.seen[conv.seen.length - 1].id;
    if (last > conv.sentRead && last > conv.readId) {
      conv.sentRead = last;
      sendBackground(`/read ${conv.name} ${last}`);
    }
  }, 1000);
}

function said(room, nick, text, kind) {
  const conv = conversation(fold(room), room, "room");
  const mine = fold(nick) === fold(state.nick);
  const entry = { kind, nick, text, mine, mention: !mine && mentions(text), room, id: null };
  const live = liveId(room); // its ID line came just before (/ids on)
  if (live) Object.assign(entry, { id: live.id, time: live.time });
  entry.replyTo = takeReply(room);
  stopTyping(conv, nick);
  conv.lastLive = entry;
  add(conv, entry);
  if (entry.mention) alertUser(conv, `${nick} in ${room}`, text);
}

function mentions(text) {
  if (!state.nick) return false;
  const escaped = state.nick.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  return new RegExp(`(^|[^\\p{L}\\p{N}_-])${escaped}($|[^\\p{L}\\p{N}_-])`, "iu").test(text);
}

/** Show the HISTORY lines that ENDHISTORY closes: older ones above, else below. */
function history(conv, count) {
  let entries = conv.pending.filter((entry) => !conv.ids.has(entry.id));
  conv.pending = [];
  if (entries.length && (conv.oldest === null || entries[0].id < conv.oldest || conv.loadingOlder)) {
    conv.oldest = entries[0].id;
  }
  if (conv.probing) {
    conv.probing = false; // the answer to the probe below: one older line, or none
    if (count === 0) conv.historyDone = true;
    prepend(conv, entries);
  } else if (conv.loadingOlder) {
    conv.loadingOlder = false;
    if (count < HISTORY_PAGE) conv.historyDone = true;
    prepend(conv, entries);
  } else {
    if (conv.rejoined && conv.lastLive) {
      // After a reconnect the backfill repeats what was seen: show what came after.
      const last = conv.lastLive;
      const seen = entries.findLastIndex((e) => e.nick === last.nick && e.text === last.text && e.kind === last.kind);
      if (seen >= 0) entries = entries.slice(seen + 1);
      if (entries.length) divider(conv, "while you were away");
    }
    conv.rejoined = false;
    for (const entry of entries) {
      // Past the account's marker (the catch-up's READ came first): unread.
      const mine = fold(entry.nick) === fold(state.nick);
      const unread = conv.readId > 0 && Number(entry.id) > conv.readId && !mine;
      add(conv, { ...entry, past: true, mine }, unread);
    }
    if (entries.length) conv.lastLive = entries[entries.length - 1];
    // The backfill's size is the server's (--backfill): ask once whether there is
    // anything before it, so that "Load older messages" shows only when there is.
    if (conv.kind === "room" && conv.oldest !== null && !conv.historyDone && !conv.probed) {
      conv.probed = true;
      conv.probing = true;
      sendBackground(`/history ${conv.name} 1 before ${conv.oldest}`);
    }
  }
  for (const entry of entries) conv.ids.add(entry.id);
  if (conv.key === state.current) renderOlder();
}

// -- conversations on screen ------------------------------------------------

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** Build one line of a conversation; every wire text goes in as text. */
function lineElement(entry) {
  const item = document.createElement("li");
  item.className = `line ${entry.kind}${entry.mention ? " mention" : ""}${entry.past ? " past" : ""}`;
  const when = entry.time || new Date();
  const stamp = document.createElement("time");
  stamp.dateTime = when.toISOString();
  stamp.title = when.toLocaleString();
  stamp.textContent = timeFormat.format(when);
  item.append(stamp, " ");
  if (entry.kind === "msg" || entry.kind === "action") {
    const nick = document.createElement("span");
    nick.className = "nick";
    nick.textContent = entry.nick;
    nick.style.setProperty("--hue", String(hue(entry.nick)));
    const text = document.createElement("span");
    text.className = "text";
    if (entry.kind === "action") text.append("* ", nick, " ");
    else item.append(nick, " ");
    appendText(text, entry.text);
    item.append(text);
    if (entry.id && /^\d+$/.test(entry.id)) {
      item.dataset.id = entry.id;
      if (mayDelete(entry)) item.append(" ", deleteButton(entry));
    }
  } else {
    appendText(item, entry.text);
  }
  return item;
}

/** Text with web addresses made into links (built as elements, never parsed). */
function appendText(parent, text) {
  const pattern = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;
  let at = 0;
  for (const match of text.matchAll(pattern)) {
    parent.append(text.slice(at, match.index));
    const link = document.createElement("a");
    link.href = match[0];
    link.textContent = match[0];
    link.rel = "noopener noreferrer nofollow";
    link.target = "_blank";
    parent.append(link);
    at = match.index + match[0].length;
  }
  parent.append(text.slice(at));
}

/** A colour per nick: FNV-1a of the folded name, spread round the wheel. */
function hue(nick) {
  let hash = 0x811c9dc5;
  for (const ch of fold(nick)) hash = Math.imul(hash ^ ch.codePointAt(0), 0x01000193) >>> 0;
  return Math.round((hash % 1000) * 137.508) % 360;
}

function atBottom() {
  const log = $("log");
  return log.scrollHeight - log.scrollTop - log.clientHeight < 40;
}

function add(conv, entry, count = true) {
  const shown = conv.key === state.current;
  const stick = shown && atBottom();
  const element = lineElement(entry);
  decorate(conv, entry, element);
  conv.list.append(element);
  while (conv.list.childElementCount > KEEP_LINES) conv.list.firstElementChild.remove();
  if (stick) $("log").scrollTop = $("log").scrollHeight;
  const seen = shown && document.visibilityState === "visible";
  if (entry.id) {
    conv.seen.push({ id: Number(entry.id), mine: Boolean(entry.mine), element });
    if (conv.seen.length > KEEP_LINES) conv.seen.shift();
    if (seen) markRead();
  }
  if (count && !seen && !entry.mine && (entry.kind === "msg" || entry.kind === "action")) {
    if (!conv.unread) conv.firstUnread = element; // the "New messages" line goes here
    conv.unread += 1;
    if (entry.mention || conv.kind === "private") conv.mentions += 1;
    renderSide();
  }
}

function note(conv, kind, text) {
  add(conv, { kind, text }, false);
}

function divider(conv, text) {
  conv.list.append(dividerElement(text));
}

function dividerElement(text) {
  const item = document.createElement("li");
  item.className = "divider";
  const label = document.createElement("span");
  label.textContent = text;
  item.append(label);
  return item;
}

// -- deleting messages (docs/protocol.md, Deleting messages) --------------------

/** Whether to offer a delete: one's own message, or any in a room one runs.
 * The server decides; this only spares a button that would be refused. */
function mayDelete(entry) {
  if (fold(entry.nick) === fold(state.nick)) return true;
  const conv = state.conversations.get(fold(entry.room || ""));
  return Boolean(conv && conv.kind === "room" && conv.ops.has(fold(state.nick)));
}

function deleteButton(entry) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "delete";
  button.textContent = "×";
  button.title = "Delete this message";
  button.setAttribute("aria-label", "Delete this message");
  button.addEventListener("click", () => send(`/delete ${entry.room} ${entry.id}`));
  return button;
}

/** A DELETED line: grey the message where it is shown, and say who deleted it. */
function deleted(target, id, by, reason) {
  if (!/^\d+$/.test(id)) return;
  const other = target.startsWith("#") || fold(target) !== fold(state.nick) ? target : by;
  const conv = state.conversations.get(fold(other));
  if (!conv) return;
  conv.pending = conv.pending.filter((entry) => entry.id !== id);
  const item = conv.list.querySelector(`li[data-id="${id}"]`);
  if (!item) return;
  item.classList.add("deleted");
  const text = item.querySelector(".text");
  if (text) {
    const who = fold(by) === fold(state.nick) ? "you" : by;
    text.textContent = `message deleted by ${who}${reason ? `: ${reason}` : ""}`;
  }
  const button = item.querySelector("button.delete");
  if (button) button.remove();
}

function prepend(conv, entries) {
  const log = $("log");
  const before = log.scrollHeight;
  const fragment = document.createDocumentFragment();
  for (const entry of entries) {
    const element = lineElement({ ...entry, past: true });
    decorate(conv, entry, element);
    fragment.append(element);
  }
  conv.list.prepend(fragment);
  if (conv.key === state.current) log.scrollTop += log.scrollHeight - before;
}

function select(key) {
  if (!state.conversations.has(key)) key = SERVER;
  state.current = key;
  const conv = currentConv();
  if (state.replying && state.replying.key !== key) cancelReply();
  renderTyping();
  conv.unread = 0;
  conv.mentions = 0;
  if (document.visibilityState === "visible") markRead();
  $("log").replaceChildren(conv.list);
  $("log").scrollTop = $("log").scrollHeight;
  if (conv.firstUnread) {
    // A line where the unread messages begin, from where the person last read.
    conv.list.querySelector(".divider.unread-from")?.remove();
    if (conv.firstUnread.isConnected) {
      const mark = dividerElement("New messages");
      mark.classList.add("unread-from");
      conv.firstUnread.before(mark);
      if (mark.offsetTop < $("log").scrollTop) mark.scrollIntoView({ block: "start" });
    }
    conv.firstUnread = null;
  }
  renderHeader();
  $("member-actions").hidden = true;
  $("say").placeholder = conv.kind === "room" ? `Message ${conv.name}`
    : conv.kind === "private" ? `Message ${conv.name} (private)` : "Type a /command (try /help)";
  $("side").classList.remove("open");
  $("toggle-side").setAttribute("aria-expanded", "false");
  renderSide();
  renderMembers();
  renderOlder();
  saveSession();
}

/** The room's name, and under it its topic (or why we are not in it). */
function renderHeader() {
  const conv = currentConv();
  $("title").textContent = conv.kind === "server" ? state.serverName : conv.name;
  let topic = "";
  if (conv.kind === "room") {
    topic = conv.kicked ? conv.kicked : !conv.joined ? "Not in this room." : conv.topic;
  }
  $("topic").replaceChildren();
  appendText($("topic"), topic); // its links can be clicked too
  $("topic").title = conv.topic && conv.topicBy ? `Set by ${conv.topicBy}` : "";
  $("topic").classList.toggle("out", Boolean(conv.kind === "room" && !conv.joined));
  // docs/protocol.md: members set the topic unless +t, operators always.
  const mayEdit = conv.kind === "room" && conv.joined
    && (isOp(conv) || (conv.modes !== null && !conv.modes.includes("t")));
  $("topic-edit").hidden = !mayEdit || !$("topic-form").hidden;
  if (!mayEdit) closeTopicForm();
}

function closeTopicForm() {
  $("topic-form").hidden = true;
  $("topic").hidden = false;
}

function removeConv(key) {
  const keys = [...state.conversations.keys()];
  state.conversations.delete(key);
  if (state.current === key) select(keys[Math.max(0, keys.indexOf(key) - 1)]);
  else renderSide();
  saveSession();
}

// -- the session: what a reload brings back (names only, nothing secret) -----

const SESSION = "chatd.session";

function saveSession() {
  if (state.phase !== "registered") return;
  const rooms = [];
  const privates = [];
  for (const conv of state.conversations.values()) {
    if (conv.kind === "room" && !conv.kicked) rooms.push(conv.name);
    else if (conv.kind === "private") privates.push(conv.name);
  }
  localStorage.setItem(SESSION, JSON.stringify({ rooms, privates, current: state.current }));
}

/** The rooms and private conversations of the last visit, and the one on screen. */
function restoreSession() {
  state.restored = true;
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(SESSION) || "null");
  } catch {
    saved = null;
  }
  if (!saved || typeof saved !== "object") return;
  const names = (list) => (Array.isArray(list) ? list.filter((n) => typeof n === "string" && n) : []);
  for (const name of names(saved.rooms)) {
    if (name.startsWith("#")) conversation(fold(name), name, "room");
  }
  for (const name of names(saved.privates)) {
    if (!name.startsWith("#")) conversation(fold(name), name, "private").restored = true;
  }
  if (typeof saved.current === "string" && state.conversations.has(saved.current)) {
    state.current = saved.current;
  }
}

/** Private history is kept for identified users only: ask once identified. */
function privateBackfill() {
  for (const conv of state.conversations.values()) {
    if (conv.kind === "private" && conv.restored) {
      conv.restored = false;
      sendBackground(`/history ${conv.name} ${HISTORY_PAGE}`);
    }
  }
}

function renderSide() {
  const rooms = [];
  const people = [];
  for (const conv of state.conversations.values()) {
    (conv.kind === "private" ? people : rooms).push(conv);
  }
  rooms.sort((a, b) => (a.kind === "server" ? -1 : b.kind === "server" ? 1 : a.key.localeCompare(b.key)));
  $("rooms").replaceChildren(...rooms.map(convItem));
  $("privates").replaceChildren(...people.map(convItem));
  const unread = [...state.conversations.values()].reduce((sum, c) => sum + c.unread, 0);
  document.title = `${unread ? `(${unread}) ` : ""}${state.nick ? `${state.nick} — ` : ""}${state.serverName}`;
}

function convItem(conv) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  const out = conv.kind === "room" && conv.kicked ? " kicked" : "";
  button.className = `conv ${conv.kind}${conv.unread ? " unread" : ""}${out}`;
  button.dataset.key = conv.key;
  if (conv.key === state.current) button.setAttribute("aria-current", "true");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = conv.kind === "server" ? state.serverName : conv.name;
  button.append(name);
  let label = conv.kind === "server" ? `${state.serverName} (server notices)` : conv.name;
  if (out) { label += ` (${conv.kicked})`; button.title = conv.kicked; }
  if (conv.unread) {
    const badge = document.createElement("span");
    badge.className = `badge${conv.mentions ? " mention" : ""}`;
    badge.textContent = String(conv.unread);
    button.append(badge);
    label += `, ${conv.unread} unread`;
  }
  button.setAttribute("aria-label", label);
  button.addEventListener("click", () => { select(conv.key); $("say").focus(); });
  item.append(button);
  // A room we are out of (kicked, or a rejoin refused) can be closed too.
  const gone = conv.kind === "room" && !conv.joined && state.phase === "registered"
    && conv.key !== fold(LOBBY);
  if (conv.kind === "private" || gone) {
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "×";
    close.setAttribute("aria-label", gone ? `Close ${conv.name}` : `Close the conversation with ${conv.name}`);
    close.addEventListener("click", () => removeConv(conv.key));
    item.append(close);
  }
  return item;
}

function renderMembers() {
  const conv = currentConv();
  const rank = (nick) => (conv.ops.has(fold(nick)) ? 0 : conv.voiced.has(fold(nick)) ? 1 : 2);
  const nicks = [...conv.members.values()]
    .sort((a, b) => rank(a) - rank(b) || fold(a).localeCompare(fold(b)));
  $("members-title").textContent = conv.kind === "room" ? `Members (${nicks.length})` : "Members";
  $("member-list").replaceChildren(...nicks.map((nick) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "member";
    button.dataset.nick = nick;
    const mark = ["@", "+", ""][rank(nick)];
    const role = ["operator", "voiced", ""][rank(nick)];
    if (mark) {
      const sign = document.createElement("span");
      sign.className = "mark";
      sign.textContent = mark;
      sign.title = role;
      button.append(sign);
    }
    const name = document.createElement("span");
    name.className = "nick";
    name.textContent = nick;
    name.style.setProperty("--hue", String(hue(nick)));
    button.append(name);
    button.setAttribute("aria-label", `${nick}${role ? `, ${role}` : ""}: actions`);
    button.addEventListener("click", () => memberActions(nick));
    item.append(button);
    return item;
  }));
}

/** The actions on one member: a private message, and for operators the rest. */
function memberActions(nick) {
  const conv = currentConv();
  if (conv.kind !== "room") { openPrivate(nick); return; }
  const form = $("member-actions");
  form.dataset.nick = nick;
  $("member-name").textContent = nick;
  const op = isOp(conv);
  for (const element of form.querySelectorAll("[data-op]")) element.hidden = !op;
  $("act-op").textContent = conv.ops.has(fold(nick)) ? "Take operator status" : "Make operator";
  $("act-voice").textContent = conv.voiced.has(fold(nick)) ? "Take voice" : "Give voice";
  $("act-reason").value = "";
  form.hidden = false;
  $("act-message").focus();
}

function memberAction(what) {
  const conv = currentConv();
  const nick = $("member-actions").dataset.nick;
  if (conv.kind !== "room" || !nick) return;
  const reason = $("act-reason").value.trim();
  const key = fold(nick);
  $("member-actions").hidden = true;
  if (what === "message") { openPrivate(nick); return; }
  const lines = {
    op: [`/${conv.ops.has(key) ? "deop" : "op"} ${conv.name} ${nick}`],
    voice: [`/${conv.voiced.has(key) ? "devoice" : "voice"} ${conv.name} ${nick}`],
    kick: [`/kick ${conv.name} ${nick} ${reason}`.trim()],
    ban: [`/ban ${conv.name} ${nick}`, `/kick ${conv.name} ${nick} ${reason}`.trim()],
  }[what];
  for (const line of lines) send(line);
  $("say").focus();
}

function renderOlder() {
  const conv = currentConv();
  const stick = atBottom(); // the button takes room from the log: keep its end in view
  $("older").hidden = !(conv.kind === "room" && conv.oldest !== null
    && !conv.historyDone && !conv.probing);
  if (stick) $("log").scrollTop = $("log").scrollHeight;
}

function openPrivate(nick) {
  if (fold(nick) === fold(state.nick)) return;
  const conv = conversation(fold(nick), nick, "private");
  select(conv.key);
  $("members").classList.remove("open");
  $("say").focus();
}

function loadOlder() {
  const conv = currentConv();
  if (conv.kind !== "room" || conv.oldest === null || conv.historyDone || conv.loadingOlder
      || conv.probing) return;
  conv.loadingOlder = true;
  send(`/history ${conv.name} ${HISTORY_PAGE} before ${conv.oldest}`);
}

// -- typing -----------------------------------------------------------------

const typed = { lines: [], at: 0, draft: "" };

function submit(text) {
  if (!text.trim()) return;
  // Lines that carry a password are never kept for Up/Down.
  if (!/^\/(identify|register|password|unregister)\s/i.test(text)) typed.lines.push(text);
  if (typed.lines.length > 500) typed.lines.shift();
  typed.at = typed.lines.length;
  const conv = currentConv();
  if (state.phase !== "registered") {
    note(conv, "error", "Not connected: that was not sent.");
    return;
  }
  if (text.startsWith("/") && !text.startsWith("//")) {
    command(text, conv);
  } else if (conv.kind === "room" && !conv.joined) {
    note(conv, "error", `You are not in ${conv.name}: /join ${conv.name} to go back.`);
  } else if (state.replying && state.replying.key === conv.key) {
    const { id } = state.replying;
    cancelReply();
    send(`/reply ${conv.name} ${id} ${text.startsWith("//") ? text.slice(1) : text}`);
  } else if (conv.kind === "room") {
    makeCurrent(conv);
    send(text);
  } else if (conv.kind === "private") {
    send(`/msg ${conv.name} ${text.startsWith("//") ? text.slice(1) : text}`);
  } else {
    note(conv, "error", "This is the server's notices. Pick a room to talk in, or type a /command.");
  }
}

/** Make room the server's current room, so that a plain line goes there. */
function makeCurrent(conv) {
  if (state.serverRoom === conv.key && conv.joined) return;
  state.switching += conv.joined ? 1 : 0;
  state.serverRoom = conv.key;
  send(`/join ${conv.name}`);
}

function command(text, conv) {
  const [name, ...args] = text.slice(1).split(/\s+/).filter(Boolean);
  const rest = text.slice(1 + (name || "").length).trim();
  const inRoom = conv.kind === "room";
  const namesRoom = args.length > 0 && args[0].startsWith("#");
  switch ((name || "").toLowerCase()) {
    case "join":
      if (args.length) {
        const known = state.conversations.get(fold(args[0]));
        if (known && known.kind === "room" && known.joined) {
          select(known.key);
          makeCurrent(known);
          return;
        }
        state.asked.add(fold(args[0]));
      }
      break;
    case "part":
      if (conv.kind === "private" && !namesRoom) { removeConv(conv.key); return; }
      if (inRoom && !namesRoom) { send(`/part ${conv.name} ${rest}`.trim()); return; }
      break;
    case "query":
    case "q":
      if (args.length) { openPrivate(args[0]); return; }
      break;
    case "msg":
      if (args.length > 1) state.askedPrivate = fold(args[0]);
      break;
    case "who":
      if (inRoom && !args.length) text = `/who ${conv.name}`;
      state.whoShown.add(fold(args[0] || conv.name));
      setTimeout(() => state.whoShown.delete(fold(args[0] || conv.name)), 3000);
      break;
    case "topic": case "op": case "deop": case "voice": case "devoice": case "kick":
    case "ban": case "unban": case "bans": case "mode":
      // docs/protocol.md: [<#room>] defaults to the server's current room; here
      // it is the room on screen.
      if (inRoom && !namesRoom) text = `/${name} ${conv.name} ${rest}`.trim();
      break;
    case "me":
      if (conv.kind === "private") {
        note(conv, "error", "/me works in rooms, not in private conversations.");
        return;
      }
      if (inRoom) makeCurrent(conv);
      break;
    case "quit":
      state.phase = "quitting";
      localStorage.removeItem(SESSION);
      break;
  }
  send(text);
}

// docs/protocol.md's commands, and the page's own /query.
const COMMAND_NAMES = [
  "ban", "bans", "deop", "devoice", "help", "history", "identify", "invite", "join",
  "kick", "kill", "me", "mode", "msg", "nick", "op", "part", "password", "query",
  "quit", "register", "rooms", "topic", "unban", "unregister", "voice", "who",
];
const completion = { result: null, before: "", after: "", matches: [], at: 0 };

/** Tab: complete the word before the caret (a command, a room, a nick); again: the next. */
function complete(input) {
  const c = completion;
  if (c.result !== input.value || !c.matches.length) {
    const caret = input.selectionStart ?? input.value.length;
    const before = input.value.slice(0, caret);
    const start = before.search(/\S*$/);
    const word = before.slice(start);
    if (!word) return false;
    const conv = currentConv();
    let matches;
    if (start === 0 && word.startsWith("/")) {
      const prefix = word.slice(1).toLowerCase();
      matches = COMMAND_NAMES.filter((name) => name.startsWith(prefix)).map((name) => `/${name} `);
    } else {
      const names = word.startsWith("#")
        ? [...state.conversations.values()].filter((r) => r.kind === "room").map((r) => r.name)
        : [...conv.members.values(), ...(conv.kind === "private" ? [conv.name] : [])];
      const prefix = fold(word.replace(/^[@+]/, ""));
      matches = [...new Set(names)]
        .filter((name) => fold(name).startsWith(prefix) && fold(name) !== fold(state.nick))
        .sort((a, b) => fold(a).localeCompare(fold(b)))
        .map((name) => (start === 0 && !word.startsWith("#") ? `${name}: ` : `${name} `));
    }
    if (!matches.length) return false;
    Object.assign(c, { before: before.slice(0, start), after: input.value.slice(caret), matches, at: 0 });
  } else {
    c.at = (c.at + 1) % c.matches.length;
  }
  input.value = c.before + c.matches[c.at] + c.after;
  const caret = c.before.length + c.matches[c.at].length;
  input.setSelectionRange(caret, caret);
  c.result = input.value;
  return true;
}

function stepConversation(step) {
  const keys = [...$("rooms").querySelectorAll(".conv"), ...$("privates").querySelectorAll(".conv")]
    .map((button) => button.dataset.key);
  const at = keys.indexOf(state.current);
  select(keys[(at + step + keys.length) % keys.length]);
}

// -- notifications ----------------------------------------------------------

function alertUser(conv, title, text) {
  if (!state.notify || !("Notification" in window) || Notification.permission !== "granted") return;
  if (document.visibilityState === "visible" && document.hasFocus() && state.current === conv.key) return;
  const shown = new Notification(title, { body: text, tag: conv.key, silent: false });
  shown.onclick = () => { window.focus(); select(conv.key); shown.close(); };
}

async function toggleNotify() {
  if (!("Notification" in window)) {
    note(currentConv(), "error", "This browser has no desktop notifications.");
    return;
  }
  if (!state.notify && Notification.permission !== "granted") {
    const answer = await Notification.requestPermission();
    if (answer !== "granted") {
      note(currentConv(), "info", "Notifications were not allowed; the browser's site settings can change that.");
      return;
    }
  }
  state.notify = !state.notify;
  localStorage.setItem("chatd.notify", state.notify ? "on" : "off");
  renderNotify();
}

function renderNotify() {
  $("notify").setAttribute("aria-pressed", String(state.notify && "Notification" in window && Notification.permission === "granted"));
}

// -- screens ----------------------------------------------------------------

function showLogin(status, error = "") {
  $("chat").hidden = true;
  $("login").hidden = false;
  $("nick").value = state.wanted;
  $("nick-error").textContent = error;
  $("login-status").textContent = status;
  $("nick-go").disabled = false;
  $("nick").focus();
}

function showChat() {
  $("login").hidden = true;
  $("chat").hidden = false;
  $("nick-error").textContent = "";
  if (!state.conversations.has(state.current) || state.current === SERVER) {
    const lobby = state.conversations.get(fold(LOBBY));
    select(lobby ? lobby.key : SERVER);
  } else {
    select(state.current);
  }
  $("say").focus();
}

function toggleDrawer(id, button) {
  const open = $(id).classList.toggle("open");
  $(button).setAttribute("aria-expanded", String(open));
  if (open) $(id).querySelector("button, input")?.focus();
}

// -- wiring -----------------------------------------------------------------

$("nick-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const nick = $("nick").value.trim();
  if (!nick) { $("nick-error").textContent = "Choose a nickname first."; return; }
  state.wanted = nick;
  state.password = $("password").value; // kept in memory until WELCOME, never stored
  $("password").value = "";
  $("nick-error").textContent = "";
  if (state.phase === "nick") sendNick();
  else if (!state.socket) { state.attempt = 0; connect(); }
});

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("say");
  submit(input.value);
  input.value = "";
  typingSent.key = null; // a message says the typing is done
  typingSent.off.delete(currentConv().key); // and may be answered: try again
});

$("say").addEventListener("input", (event) => typingInput(event.target.value));

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const typedName = $("join-room").value.trim();
  if (!typedName) return;
  $("join-room").value = "";
  // A conversation the page has (its name, or the only one it begins) is shown;
  // anything else is a room to join.
  const wanted = fold(typedName.replace(/^#/, ""));
  const convs = [...state.conversations.values()].filter((c) => c.kind !== "server");
  const bare = (c) => fold(c.name.replace(/^#/, ""));
  const exact = convs.find((c) => bare(c) === wanted);
  const begun = convs.filter((c) => bare(c).startsWith(wanted));
  const known = exact || (begun.length === 1 ? begun[0] : null);
  if (known && (known.kind === "private" || known.joined)) {
    select(known.key);
  } else if (state.phase === "registered") {
    const room = typedName.startsWith("#") ? typedName : `#${known ? known.name.slice(1) : typedName}`;
    command(`/join ${room}`, currentConv());
  }
  $("say").focus();
});

$("say").addEventListener("keydown", (event) => {
  const input = event.target;
  if (event.key === "Tab" && !event.shiftKey && !event.altKey && !event.ctrlKey) {
    // Nothing to complete: Tab moves on, as everywhere (no keyboard trap).
    if (complete(input)) event.preventDefault();
    return;
  }
  completion.result = null;
  if (event.key === "ArrowUp" && !event.altKey && typed.at > 0) {
    if (typed.at === typed.lines.length) typed.draft = input.value;
    typed.at -= 1;
    input.value = typed.lines[typed.at];
    event.preventDefault();
  } else if (event.key === "ArrowDown" && !event.altKey && typed.at < typed.lines.length) {
    typed.at += 1;
    input.value = typed.at === typed.lines.length ? typed.draft : typed.lines[typed.at];
    event.preventDefault();
  } else if (event.key === "PageUp" || event.key === "PageDown") {
    if (event.ctrlKey) return; // changes conversation (below)
    const log = $("log");
    log.scrollTop += (event.key === "PageUp" ? -1 : 1) * log.clientHeight * 0.9;
    event.preventDefault();
  }
});

document.addEventListener("keydown", (event) => {
  if ($("chat").hidden) return;
  if ((event.altKey && (event.key === "ArrowUp" || event.key === "ArrowDown"))
      || (event.ctrlKey && (event.key === "PageUp" || event.key === "PageDown"))) {
    stepConversation(event.key === "ArrowUp" || event.key === "PageUp" ? -1 : 1);
    $("say").focus();
    event.preventDefault();
  } else if (event.ctrlKey && (event.key === "k" || event.key === "K")) {
    // Jump: the side list's box takes a conversation's name (or a room to join).
    if (!$("side").classList.contains("open")) toggleDrawer("side", "toggle-side");
    $("join-room").focus();
    event.preventDefault();
  } else if (event.altKey && event.key === "1") {
    toggleDrawer("side", "toggle-side");
    event.preventDefault();
  } else if (event.altKey && event.key === "3") {
    toggleDrawer("members", "toggle-members");
    event.preventDefault();
  } else if (event.key === "Escape") {
    $("member-actions").hidden = true;
    cancelReply();
    picker().hidden = true;
    if (!$("topic-form").hidden) { closeTopicForm(); renderHeader(); }
    $("side").classList.remove("open");
    $("members").classList.remove("open");
    $("say").focus();
  }
});

$("register").addEventListener("click", () => {
  accountForm("register", `Register ${state.nick}: a password of 8 characters or more, twice.`);
});
$("account-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const password = $("account-password").value;
  const again = $("account-again").value;
  if (!password || /\s/.test(password)) {
    $("account-label").textContent = "A password is one word, 8 characters or more.";
    return;
  }
  if ($("account-form").dataset.mode === "register") {
    if (password !== again) {
      $("account-label").textContent = "The two passwords differ: type the same one twice.";
      return;
    }
    send(`/register ${password} ${again}`);
  } else {
    send(`/identify ${password}`);
  }
  // The form stays until ACCOUNT says it worked; a refusal shows in the log.
  $("account-password").value = "";
  $("account-again").value = "";
});
$("account-cancel").addEventListener("click", () => {
  $("account-form").hidden = true;
  $("say").focus();
});

$("topic-edit").addEventListener("click", () => {
  $("topic-input").value = currentConv().topic;
  $("topic-form").hidden = false;
  $("topic").hidden = true;
  $("topic-edit").hidden = true;
  $("topic-input").focus();
});
$("topic-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const conv = currentConv();
  const text = $("topic-input").value.trim();
  // docs/protocol.md: "/topic -" clears it.
  if (conv.kind === "room") send(`/topic ${conv.name} ${text || "-"}`);
  closeTopicForm();
  renderHeader();
  $("say").focus();
});
$("topic-cancel").addEventListener("click", () => { closeTopicForm(); renderHeader(); $("say").focus(); });
$("member-actions").addEventListener("submit", (event) => event.preventDefault());
for (const what of ["message", "op", "voice", "kick", "ban"]) {
  $(`act-${what}`).addEventListener("click", () => memberAction(what));
}
$("act-reason").addEventListener("keydown", (event) => {
  if (event.key === "Enter") { event.preventDefault(); memberAction("kick"); }
});

$("log").addEventListener("scroll", () => {
  if ($("log").scrollTop < 40) loadOlder();
});
$("older").addEventListener("click", loadOlder);
$("notify").addEventListener("click", toggleNotify);
$("toggle-side").addEventListener("click", () => toggleDrawer("side", "toggle-side"));
$("toggle-members").addEventListener("click", () => toggleDrawer("members", "toggle-members"));
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && !$("chat").hidden) select(state.current);
});

// -- typing, reactions and replies (docs/protocol.md, /tags on) -------------

const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const TYPING_SEND = 3000; // ms between our own "active" (IRCv3 typing asks 3 s)
const TYPING_SHOWN = { active: 6000, paused: 30000 }; // how long a notice stands
const tagged = { replies: new Map() }; // REPLY lines, per target
const typingSent = { key: null, at: 0, name: "", off: new Set() };

/** An ERR that answers our own typing notice (the person left, the room is +m, the
 *  rate): not shown, and that conversation gets no more until we say something. */
function typingRefused(code, text) {
  if (code === "flood" && text.startsWith("typing and reactions")) return true;
  const recent = Date.now() - typingSent.at < 5000 && typingSent.name;
  if (!recent || !text.includes(typingSent.name)) return false;
  if (!["no-such-nick", "not-in-room", "moderated", "banned"].includes(code)) return false;
  typingSent.off.add(fold(typingSent.name));
  typingSent.key = null;
  return true;
}

/** The id a REPLY line just before a message named for target, if any. */
function takeReply(target) {
  const id = tagged.replies.get(fold(target));
  tagged.replies.delete(fold(target));
  return id;
}

/** The conversation a TYPING or REACT line belongs to: the room, or the other person. */
function taggedConv(target, nick) {
  if (target.startsWith("#")) return state.conversations.get(fold(target));
  const other = fold(nick) === fold(state.nick) ? target : nick;
  return conversation(fold(other), other, "private");
}

function typingShown(target, nick, typing) {
  if (fold(nick) === fold(state.nick)) return; // our own, echoed
  const conv = taggedConv(target, nick);
  if (!conv) return;
  const key = fold(nick);
  clearTimeout(conv.typing.get(key)?.timer);
  if (typing === "done") {
    conv.typing.delete(key);
  } else {
    const timer = setTimeout(() => stopTyping(conv, nick), TYPING_SHOWN[typing] || 6000);
    conv.typing.set(key, { nick, typing, timer });
  }
  if (conv.key === state.current) renderTyping();
}

function stopTyping(conv, nick) {
  const was = conv.typing.get(fold(nick));
  if (!was) return;
  clearTimeout(was.timer);
  conv.typing.delete(fold(nick));
  if (conv.key === state.current) renderTyping();
}

/** "alice is typing…" under the log, for the conversation on screen. */
function renderTyping() {
  let line = $("typing");
  if (!line) {
    line = document.createElement("p");
    line.id = "typing";
    line.className = "typing";
    line.setAttribute("aria-live", "polite");
    $("say-form").before(line);
  }
  const conv = currentConv();
  const nicks = [...(conv.typing?.values() || [])]
    .filter((who) => who.typing === "active").map((who) => who.nick);
  line.textContent = nicks.length === 0 ? ""
    : nicks.length === 1 ? `${nicks[0]} is typing…`
    : nicks.length <= 3 ? `${nicks.slice(0, -1).join(", ")} and ${nicks.at(-1)} are typing…`
    : "Several people are typing…";
}

/** Tell the conversation on screen that we type, at most every 3 s; done when cleared. */
function typingInput(text) {
  const conv = currentConv();
  const open = (conv.kind === "room" && conv.joined) || conv.kind === "private";
  if (!open || state.phase !== "registered" || typingSent.off.has(conv.key)) return;
  const now = Date.now();
  if (!text || text.startsWith("/")) {
    if (typingSent.key === conv.key) sendBackground(`/typing ${conv.name} done`);
    typingSent.key = null;
  } else if (typingSent.key !== conv.key || now - typingSent.at > TYPING_SEND) {
    sendBackground(`/typing ${conv.name} active`);
    typingSent.key = conv.key;
    typingSent.at = now;
    typingSent.name = conv.name;
  }
}

/** A line with an id: kept by id, a reply's quote, React and Reply buttons. */
function decorate(conv, entry, element) {
  if (entry.replyTo) {
    const parent = conv.byId.get(entry.replyTo);
    const quote = document.createElement("span");
    quote.className = "quote";
    quote.textContent = parent
      ? `↪ ${parent.entry.nick}: ${parent.entry.text.slice(0, 80)}`
      : "↪ a message not shown here";
    const text = element.querySelector(".text");
    if (text) text.before(quote, " ");
    else element.append(quote);
  }
  if (!entry.id || (entry.kind !== "msg" && entry.kind !== "action")) return;
  const known = conv.byId.get(entry.id);
  const reactions = known ? known.reactions : new Map(); // reaction -> nicks
  conv.byId.set(entry.id, { entry, element, reactions });
  if (conv.byId.size > KEEP_LINES) conv.byId.delete(conv.byId.keys().next().value);
  const tools = document.createElement("span");
  tools.className = "tools";
  for (const [label, action] of [["React", "react"], ["Reply", "reply"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label === "React" ? "☺" : "↩";
    button.setAttribute("aria-label", `${label} to ${entry.nick}`);
    button.title = label;
    button.addEventListener("click", () => (action === "react"
      ? openPicker(conv, entry.id, button) : startReply(conv, entry)));
    tools.append(button);
  }
  element.append(tools);
  if (reactions.size) renderReactions(conv, entry.id);
}

function reacted(target, nick, id, text) {
  const conv = taggedConv(target, nick);
  const line = conv && conv.byId.get(id);
  if (!line) return; // a message this page does not show
  const nicks = line.reactions.get(text) || new Set();
  nicks.add(nick);
  line.reactions.set(text, nicks);
  renderReactions(conv, id);
}

/** The reactions under a line: each with its count, a click adds ours. */
function renderReactions(conv, id) {
  const line = conv.byId.get(id);
  let bar = line.element.querySelector(".reactions");
  if (!bar) {
    bar = document.createElement("span");
    bar.className = "reactions";
    line.element.append(bar);
  }
  bar.replaceChildren();
  for (const [text, nicks] of line.reactions) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reaction";
    const names = [...nicks].join(", ");
    button.textContent = `${text} ${nicks.size}`;
    button.title = names;
    // The name starts with what it shows (WCAG's label in name): "👍 2, from …".
    button.setAttribute("aria-label", `${text} ${nicks.size}, from ${names}`);
    button.setAttribute("aria-pressed", String([...nicks].some((n) => fold(n) === fold(state.nick))));
    button.addEventListener("click", () => send(`/react ${conv.name} ${id} ${text}`));
    bar.append(button);
  }
}

/** The picker of a few common reactions, made once. */
function picker() {
  let menu = $("react-picker");
  if (!menu) {
    menu = document.createElement("div");
    menu.id = "react-picker";
    menu.className = "picker";
    menu.setAttribute("role", "group");
    menu.setAttribute("aria-label", "Reactions");
    menu.hidden = true;
    for (const text of REACTIONS) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.setAttribute("aria-label", `React with ${text}`);
      button.addEventListener("click", () => {
        const { conv, id } = menu.target;
        send(`/react ${conv.name} ${id} ${text}`);
        menu.hidden = true;
        $("say").focus();
      });
      menu.append(button);
    }
    document.body.append(menu);
  }
  return menu;
}

function openPicker(conv, id, button) {
  const menu = picker();
  menu.target = { conv, id };
  const box = button.getBoundingClientRect();
  menu.style.top = `${Math.max(8, box.top - 48)}px`;
  menu.style.left = `${Math.max(8, Math.min(box.left - 120, innerWidth - 280))}px`;
  menu.hidden = false;
  menu.firstElementChild.focus();
}

function startReply(conv, entry) {
  state.replying = { key: conv.key, id: entry.id };
  let bar = $("replying");
  if (!bar) {
    bar = document.createElement("div");
    bar.id = "replying";
    bar.className = "replying";
    const label = document.createElement("span");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "✕";
    cancel.setAttribute("aria-label", "Cancel the reply");
    cancel.addEventListener("click", () => { cancelReply(); $("say").focus(); });
    bar.append(label, cancel);
    $("say-form").before(bar);
  }
  bar.firstElementChild.textContent = `Replying to ${entry.nick}: ${entry.text.slice(0, 80)}`;
  bar.hidden = false;
  $("say").focus();
}

function cancelReply() {
  state.replying = null;
  const bar = $("replying");
  if (bar) bar.hidden = true;
}

renderNotify();
showLogin("");
// A reload in the middle of a session goes straight back in (as the nick it had).
if (state.wanted && localStorage.getItem(SESSION)) connect();
