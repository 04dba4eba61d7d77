// The Outpost console: each page reads the daemon's /v1 JSON API with the
// session cookie; every change sends the session's CSRF token. Text from
// the API is only ever set as text, never as HTML.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf"]').content;
  var role = document.querySelector('meta[name="role"]').content;
  var pages = ["inbox", "send", "messages", "contacts", "modems", "status"];
  var current = "";

  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "class") e.className = attrs[k];
      else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), attrs[k]);
      else e.setAttribute(k, attrs[k]);
    }
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = csrf;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body || {});
    }
    return fetch(path, opts).then(function (r) {
      if (r.status === 401) { location.href = "/login"; throw new Error("logged out"); }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || (r.status + " " + r.statusText));
        return j;
      });
    });
  }

  // syncList makes ul show items, newest first, keeping the node of an
  // item whose sig is unchanged where it is: a live update never closes
  // a reply being typed or a history being read.
  function syncList(ul, items, render, sig, empty) {
    var have = {};
    Array.from(ul.children).forEach(function (li) { have[li.dataset.id || ""] = li; });
    var keep = {};
    items.forEach(function (m) { keep[m.id] = true; });
    Object.keys(have).forEach(function (id) { if (!keep[id]) have[id].remove(); });
    if (items.length === 0) { ul.replaceChildren(el("li", { text: empty })); return; }
    items.forEach(function (m, i) {
      var old = have[m.id], node = old;
      if (!old || old.dataset.sig !== sig(m)) {
        node = render(m);
        node.dataset.sig = sig(m);
        if (old) old.replaceWith(node);
      }
      if (ul.children[i] !== node) ul.insertBefore(node, ul.children[i] || null);
    });
  }

  function section(name) { return document.getElementById("page-" + name); }

  function showError(name, err) {
    var p = section(name).querySelector(".error");
    if (!err) { p.hidden = true; p.textContent = ""; return; }
    p.textContent = err.message || String(err);
    p.hidden = false;
  }

  function when(t) {
    if (!t) return "";
    var d = new Date(t);
    return isNaN(d) ? t : d.toLocaleString();
  }

  // peer is who sent an inbound message, or whom an outbound one is to.
  function peer(m) { return ((m.direction === "in" ? m.from_addr : "") || m.peer || "").replace(/^tel:/, ""); }

  function say(text) { document.getElementById("live").textContent = text; }

  // ---- Inbox ----
  function formFields(m) {
    if (m.kind !== "form" || !m.text) return null;
    var doc = new DOMParser().parseFromString(m.text, "application/xml");
    if (doc.querySelector("parsererror")) return null;
    var dl = el("dl", { class: "form" });
    doc.querySelectorAll("*").forEach(function (n) {
      if (n.children.length === 0 && n.textContent.trim() !== "") {
        dl.append(el("dt", { text: n.localName }), el("dd", { text: n.textContent.trim() }));
      }
    });
    return dl;
  }

  function inboxItem(m) {
    var li = el("li", { "data-id": m.id, class: m.read ? "" : "unread" });
    var tags = el("span", null);
    (m.tags || []).forEach(function (t) { tags.append(el("span", { class: "tag", text: t })); });
    li.append(
      el("div", { class: "meta" }, el("strong", { text: peer(m) }), " · ", when(m.created_at),
        m.read ? " · read" : " · new", m.handled ? " · handled" : "", " ", tags),
      formFields(m) || el("p", { class: "body", text: m.text || (m.data_hex ? "(data " + m.data_hex + ")" : "") }));
    var reply = el("form", { class: "reply", hidden: "" });
    var rid = "reply-" + m.id;
    var ta = el("textarea", { id: rid, rows: "2", required: "" });
    reply.append(el("label", { for: rid, text: "Reply to " + peer(m) }), ta, el("button", { type: "submit", text: "Send reply" }));
    reply.addEventListener("submit", function (ev) {
      ev.preventDefault();
      api("POST", "/v1/messages", { to: peer(m), text: ta.value, in_reply_to: m.id }).then(function (r) {
        reply.hidden = true; ta.value = ""; say("Reply queued: " + r.id);
      }, function (e) { showError("inbox", e); });
    });
    var buttons = el("div", null, el("button", { type: "button", class: "small", text: "Reply", "aria-expanded": "false",
      onclick: function (ev) { reply.hidden = !reply.hidden; ev.target.setAttribute("aria-expanded", String(!reply.hidden)); if (!reply.hidden) ta.focus(); } }));
    if (role === "admin") {
      var mark = function (what, label) {
        return el("button", { type: "button", class: "small", text: label, onclick: function () {
          api("POST", "/v1/messages/" + m.id + "/mark", what).then(loadInbox, function (e) { showError("inbox", e); });
        } });
      };
      if (!m.read) buttons.append(mark({ read: true }, "Mark read"));
      if (!m.handled) buttons.append(mark({ handled: true }, "Mark handled"));
      var tid = "tag-" + m.id;
      var tag = el("input", { id: tid, size: "10" });
      buttons.append(el("span", { class: "tagbox" }, el("label", { for: tid, text: "Tag" }), tag,
        el("button", { type: "button", class: "small", text: "Add tag", onclick: function () {
          if (tag.value.trim()) api("POST", "/v1/messages/" + m.id + "/mark", { tag: tag.value.trim() }).then(loadInbox, function (e) { showError("inbox", e); });
        } })));
    }
    li.append(buttons, reply);
    return li;
  }

  function loadInbox() {
    return api("GET", "/v1/inbox?limit=50").then(function (list) {
      showError("inbox");
      syncList(document.getElementById("inbox-list"), list, inboxItem, function (m) {
        return JSON.stringify([m.read, m.handled, m.tags]);
      }, "No messages yet.");
    }, function (e) { showError("inbox", e); });
  }

  // ---- Send ----
  function updateCounter() {
    var text = document.getElementById("text").value;
    var i = window.smsInfo(text);
    var chars = Array.from(text).length;
    document.getElementById("counter").textContent = chars + " characters · " +
      (i.encoding === "gsm7" ? "GSM 7-bit" : "UCS-2 (Unicode)") + " · " + i.parts + (i.parts === 1 ? " part" : " parts") +
      " · " + i.left + " left in this part";
    var c = document.getElementById("counter");
    c.dataset.parts = i.parts; c.dataset.encoding = i.encoding;
  }

  function loadRecipients() {
    if (role !== "admin") return;
    var dl = document.getElementById("recipients");
    Promise.all([api("GET", "/v1/groups"), api("GET", "/v1/contacts?limit=200")]).then(function (r) {
      var opts = r[0].map(function (g) { return el("option", { value: "group:" + g.name, text: "group " + g.name }); });
      (r[1].contacts || []).forEach(function (c) {
        (c.phones || []).forEach(function (p) { opts.push(el("option", { value: p, text: c.name })); });
      });
      dl.replaceChildren.apply(dl, opts);
    }, function () {});
  }

  function send(ev) {
    ev.preventDefault();
    var to = document.getElementById("to").value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    var body = { to: to.length === 1 ? to[0] : to, text: document.getElementById("text").value,
      priority: document.getElementById("priority").value };
    var w = document.getElementById("when").value;
    if (w) body.not_before = new Date(w).toISOString().replace(/\.\d+Z$/, "Z");
    var btn = document.getElementById("send-btn");
    btn.disabled = true;
    document.getElementById("sent").textContent = "";
    api("POST", "/v1/messages", body).then(function (r) {
      showError("send");
      document.getElementById("sent").textContent = "Queued: " + r.id + ((r.notes || []).length ? " (" + r.notes.join("; ") + ")" : "");
      document.getElementById("text").value = ""; updateCounter();
    }, function (e) { showError("send", e); }).finally(function () { btn.disabled = false; });
  }

  // ---- Messages ----
  function lastError(m) {
    var e = (m.deliveries || []).map(function (d) { return d.last_error; }).filter(Boolean);
    return e.length ? e[e.length - 1] : "";
  }

  function manage(m, op) {
    return el("button", { type: "button", class: "small " + op, "data-id": m.id, text: op === "retry" ? "Retry" : "Cancel", onclick: function () {
      api("POST", "/v1/messages/" + m.id + "/" + op, {}).then(function (r) { say(r.summary || (op + " done")); loadMessages(); },
        function (e) { showError("messages", e); });
    } });
  }

  function history(m, box, btn) {
    if (!box.hidden) { box.hidden = true; btn.setAttribute("aria-expanded", "false"); return; }
    api("GET", "/v1/messages/" + m.id).then(function (v) {
      var t = el("table", null, el("caption", { class: "hint", text: "History of " + m.id }),
        el("tr", null, el("th", { scope: "col", text: "When" }), el("th", { scope: "col", text: "State" }), el("th", { scope: "col", text: "Detail" })));
      (v.events || []).forEach(function (e) {
        t.append(el("tr", null, el("td", { text: when(e.at) }), el("td", { class: "state-" + e.state, text: e.state }), el("td", { text: e.detail || "" })));
      });
      box.replaceChildren(t); box.hidden = false; btn.setAttribute("aria-expanded", "true");
    }, function (e) { showError("messages", e); });
  }

  function messageItem(m) {
    var li = el("li", { "data-id": m.id, "data-state": m.state });
    var err = lastError(m);
    var box = el("div", { hidden: "" });
    var more = el("button", { type: "button", class: "small", text: "History", "aria-expanded": "false" });
    more.addEventListener("click", function () { history(m, box, more); });
    var buttons = el("div", null, more);
    if (m.state === "failed" || m.state === "expired") buttons.append(manage(m, "retry"));
    if (m.state === "queued" || m.state === "scheduled") buttons.append(manage(m, "cancel"));
    li.append(el("div", { class: "meta" }, m.direction === "in" ? "from " : "to ", el("strong", { text: peer(m) }), " · ", when(m.created_at),
      " · ", el("span", { class: "state state-" + m.state, text: m.state })),
      el("p", { class: "body", text: m.text || "" }));
    if (err) li.append(el("p", { class: "bad", text: "Last error: " + err }));
    li.append(buttons, box);
    return li;
  }

  function loadMessages() {
    var q = new URLSearchParams({ limit: "50" });
    var d = document.getElementById("m-direction").value, s = document.getElementById("m-state").value, n = document.getElementById("m-number").value.trim();
    if (d) q.set("direction", d);
    if (s) q.set("state", s);
    if (n) q.set("number", n);
    return api("GET", "/v1/messages?" + q).then(function (p) {
      showError("messages");
      syncList(document.getElementById("messages-list"), p.messages || [], messageItem, function (m) {
        return JSON.stringify([m.state, (m.deliveries || []).map(function (d) { return [d.state, d.attempts, d.last_error]; })]);
      }, "No messages.");
    }, function (e) { showError("messages", e); });
  }

  // ---- Contacts & groups ----
  function loadContacts() {
    return Promise.all([api("GET", "/v1/contacts?limit=200"), api("GET", "/v1/groups")]).then(function (r) {
      showError("contacts");
      var cl = document.getElementById("contacts-list");
      var cs = r[0].contacts || [];
      cl.replaceChildren.apply(cl, cs.length ? cs.map(function (c) {
        return el("li", null, el("strong", { text: c.name }), el("div", { class: "meta", text: [(c.phones || []).join(", "), c.email || "", (c.groups || []).length ? "groups: " + c.groups.join(", ") : ""].filter(Boolean).join(" · ") }));
      }) : [el("li", { text: "No contacts." })]);
      var gl = document.getElementById("groups-list"), sel = document.getElementById("mb-group");
      gl.replaceChildren.apply(gl, r[1].length ? r[1].map(function (g) {
        return el("li", null, el("strong", { text: g.name }), " · " + g.members + " members");
      }) : [el("li", { text: "No groups." })]);
      sel.replaceChildren.apply(sel, r[1].map(function (g) { return el("option", { text: g.name }); }));
    }, function (e) { showError("contacts", e); });
  }

  function onSubmit(id, f) {
    document.getElementById(id).addEventListener("submit", function (ev) { ev.preventDefault(); f(ev.target); });
  }

  // ---- Pause and resume ----
  function pauseButton(name, paused, after) {
    return el("button", { type: "button", class: "small pause", "data-name": name, text: (paused ? "Resume " : "Pause ") + name, onclick: function () {
      api("POST", "/v1/" + (paused ? "resume/" : "pause/") + encodeURIComponent(name), {}).then(function (r) {
        say(r.name + (r.paused ? " paused" : " resumed")); after();
      }, function (e) { showError(current, e); });
    } });
  }

  // ---- Modems ----
  function loadModems() {
    return Promise.all([api("GET", "/v1/modems"), api("GET", "/v1/status")]).then(function (r) {
      showError("modems");
      var st = r[1], box = document.getElementById("modems-list");
      box.replaceChildren.apply(box, r[0].map(function (m) {
        var live = (st.modems || {})[m.id] || {};
        var paused = live.paused || (st.paused || []).indexOf(m.id) >= 0;
        var dl = el("dl", null);
        var row = function (k, v) { if (v !== undefined && v !== "") dl.append(el("dt", { text: k }), el("dd", { text: v })); };
        row("State", m.state + (paused ? " (paused)" : ""));
        row("Signal", m.signal_dbm ? m.signal_dbm + " dBm (" + m.signal + "/31)" : String(m.signal));
        if (m.trend) row("Signal today", m.trend.spark + "  min " + m.trend.min + " avg " + m.trend.avg + " max " + m.trend.max);
        row("Operator", [m.operator, m.network, m.registration].filter(Boolean).join(" · "));
        row("Number", m.number);
        var b = m.balance;
        if (b) {
          var amount = b.amount !== undefined ? b.amount : b.Amount;
          row("Balance", amount !== undefined && amount !== null ? amount + " " + (b.currency || b.Currency || "") : (b.text || b.Text || ""));
        }
        if (m.today) row("Today", m.today.sent + " sent (" + m.today.parts + " parts), " + m.today.failed + " failed, " + m.today.received + " received");
        row("Last error", live.error || m.error || "none");
        row("Resets", String(m.resets || 0));
        var uid = "ussd-" + m.id, out = el("pre", { class: "body", "aria-live": "polite" });
        var code = el("input", { id: uid, placeholder: "*100#" });
        var ussd = el("form", { class: "ussd" }, el("label", { for: uid, text: "USSD code" }), code, el("button", { type: "submit", text: "Run USSD" }), out);
        ussd.addEventListener("submit", function (ev) {
          ev.preventDefault(); out.textContent = "…";
          api("POST", "/v1/modems/" + encodeURIComponent(m.id) + "/ussd", { code: code.value.trim() }).then(function (a) {
            out.textContent = (a.screens || []).map(function (sc) { return sc.text; }).join("\n") || "(no answer)";
          }, function (e) { out.textContent = e.message; });
        });
        return el("article", { class: "card", "aria-labelledby": "mh-" + m.id, "data-id": m.id },
          el("h2", { id: "mh-" + m.id }, m.id + " ", el("span", { class: paused ? "paused" : "state-" + m.state, text: paused ? "paused" : m.state })),
          dl, pauseButton(m.id, paused, loadModems), ussd);
      }));
    }, function (e) { showError("modems", e); });
  }

  // ---- Status ----
  function bytes(n) {
    if (!n) return "0 B";
    var u = ["B", "KB", "MB", "GB", "TB"], i = Math.min(u.length - 1, Math.floor(Math.log(n) / Math.log(1024)));
    return (n / Math.pow(1024, i)).toFixed(i ? 1 : 0) + " " + u[i];
  }

  function loadStatus() {
    return api("GET", "/v1/status").then(function (st) {
      showError("status");
      var paused = st.paused || [];
      var up = Math.max(0, (Date.now() - new Date(st.started_at)) / 1000);
      var dl = el("dl", null);
      var row = function (k, v) { dl.append(el("dt", { text: k }), el("dd", { text: v })); };
      row("Gateway", st.gateway_id); row("Version", st.version);
      row("Up for", Math.floor(up / 3600) + " h " + Math.floor(up % 3600 / 60) + " min");
      row("Disk free", bytes(st.disk.free_bytes) + " of " + bytes(st.disk.total_bytes));
      row("Database", bytes(st.store.db_bytes) + " (WAL " + bytes(st.store.wal_bytes) + ")");
      row("Waiting for parts", st.reassembly.messages + " messages");
      row("Hub queue", st.hub_queue.messages + " messages, " + st.hub_queue.set_aside + " set aside");
      var q = el("table", null, el("caption", { class: "hint", text: "Connectors and their queues" }),
        el("tr", null, el("th", { scope: "col", text: "Connector" }), el("th", { scope: "col", text: "Waiting" }), el("th", { scope: "col", text: "" })));
      var names = {};
      (st.connectors || []).forEach(function (k) { names[k] = true; });
      Object.keys(st.queues || {}).forEach(function (k) { names[k] = true; });
      Object.keys(st.links || {}).forEach(function (k) { names[k] = true; });
      paused.forEach(function (k) { if (!(st.modems || {})[k]) names[k] = true; });
      Object.keys(names).sort().forEach(function (k) {
        var counts = (st.queues || {})[k] || {};
        var text = Object.keys(counts).map(function (s) { return counts[s] + " " + s; }).join(", ") || "empty";
        var link = (st.links || {})[k];
        if (link) text += " · link " + (link.state || JSON.stringify(link));
        q.append(el("tr", null, el("td", { text: k }), el("td", { text: text + (paused.indexOf(k) >= 0 ? " · paused" : "") }),
          el("td", null, pauseButton(k, paused.indexOf(k) >= 0, loadStatus))));
      });
      var m = el("table", null, el("caption", { class: "hint", text: "Modems" }),
        el("tr", null, el("th", { scope: "col", text: "Modem" }), el("th", { scope: "col", text: "State" }), el("th", { scope: "col", text: "" })));
      Object.keys(st.modems || {}).sort().forEach(function (id) {
        var s = st.modems[id], p = s.paused || paused.indexOf(id) >= 0;
        m.append(el("tr", null, el("td", { text: id }), el("td", { class: "state-" + s.state, text: s.state + (p ? " (paused)" : "") + (s.error ? ": " + s.error : "") }),
          el("td", null, pauseButton(id, p, loadStatus))));
      });
      if (Object.keys(names).length === 0) q.append(el("tr", null, el("td", { colspan: "3", text: "Nothing waiting." })));
      document.getElementById("status-body").replaceChildren(dl, m, q);
    }, function (e) { showError("status", e); });
  }

  var loaders = { inbox: loadInbox, send: loadRecipients, messages: loadMessages, contacts: loadContacts, modems: loadModems, status: loadStatus };

  function show() {
    var name = location.hash.slice(1);
    if (pages.indexOf(name) < 0) name = "inbox";
    if (role !== "admin" && name !== "inbox" && name !== "send") name = "inbox";
    var moved = current !== "" && current !== name;
    current = name;
    pages.forEach(function (p) {
      section(p).hidden = p !== name;
      var a = document.getElementById("nav-" + p);
      if (p === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    });
    document.title = section(name).querySelector("h1").textContent + " · Outpost";
    if (moved) document.getElementById("main").focus();
    loaders[name]();
  }

  // ---- Live updates ----
  var pending = null;
  function refresh(pagesToRefresh) {
    if (pagesToRefresh.indexOf(current) < 0 || pending) return;
    pending = setTimeout(function () { pending = null; loaders[current](); }, 300);
  }

  function listen() {
    var es = new EventSource("/v1/events");
    es.addEventListener("inbound", function (ev) {
      var d = JSON.parse(ev.data);
      say("New message from " + (d.from || "").replace(/^tel:/, ""));
      refresh(["inbox", "messages"]);
    });
    es.addEventListener("status", function () { refresh(["messages", "status"]); });
    es.addEventListener("modem", function () { refresh(["modems", "status"]); });
    es.addEventListener("reload", function () { refresh(pages); });
    es.addEventListener("bye", function () { es.close(); location.href = "/login"; });
    es.onerror = function () { if (es.readyState === EventSource.CLOSED) say("Live updates stopped: reload the page."); };
  }

  if (role !== "admin") document.querySelectorAll(".admin").forEach(function (a) { a.hidden = true; });
  document.getElementById("text").addEventListener("input", updateCounter);
  document.getElementById("send-form").addEventListener("submit", send);
  onSubmit("messages-filter", loadMessages);
  onSubmit("contact-form", function () {
    var phone = document.getElementById("c-phone").value.trim(), email = document.getElementById("c-email").value.trim();
    var body = { name: document.getElementById("c-name").value.trim() };
    if (phone) body.phones = [phone];
    if (email) body.email = email;
    api("POST", "/v1/contacts", body).then(function () { document.getElementById("contact-form").reset(); loadContacts(); }, function (e) { showError("contacts", e); });
  });
  onSubmit("group-form", function () {
    api("POST", "/v1/groups", { name: document.getElementById("g-name").value.trim() }).then(function () { document.getElementById("group-form").reset(); loadContacts(); }, function (e) { showError("contacts", e); });
  });
  onSubmit("member-form", function () {
    var g = document.getElementById("mb-group").value;
    api("POST", "/v1/groups/" + encodeURIComponent(g) + "/members", { add: [document.getElementById("mb-contact").value.trim()] }).then(function () { loadContacts(); }, function (e) { showError("contacts", e); });
  });
  window.addEventListener("hashchange", show);
  updateCounter();
  show();
  listen();
})();
