// shaobing — sampler.js: the sampling-point registration page (采样登记,
// screening/templates/screening_sampler.html). A sampler registers people into
// pooled tubes all day on a phone, often on a weak network or none, so:
//
//   - every registration is written to IndexedDB first (with a client_id and
//     sampled_at = now) and only then shown as "pending";
//   - a sync loop sends the queue to the JSON API and removes an item only on a
//     definitive answer: 200/201 → synced; 409/422 (and a JSON 400/404/413) →
//     "needs attention", kept with the server's message until the sampler fixes
//     and resends it or discards it explicitly;
//   - network errors, 5xx, 429/503, 401 and 403 keep the item and retry with
//     backoff; the same client_id is re-sent for the same item, and the server
//     answers a repeated id with the original, so a retry never doubles.
//
// Plain ES2017, no framework, no inline script (strict CSP): texts come from the
// JSON block #sampler-text, points from the <option>s of #sampler-point.
// Needs scan.js (and the vendored ZXing) for the camera buttons.
//
// State attributes kept current for people and browser tests:
//   [data-sampler]        data-ready="true" once running; data-tube (code or ""),
//                         data-tube-count, data-tube-capacity, data-tube-full
//   [data-part="status"]  data-pending, data-synced (today), data-attention,
//                         data-pending-seals, data-others (other accounts' items),
//                         data-online, data-auth (ok|login|forbidden|user_changed),
//                         data-syncing, data-storage (indexeddb|memory)
//
// The only global is window.shaobingSampler: the pure helpers below, for the
// self-check page internal/screening/testdata/sampler_js_test.html.
(function () {
  "use strict";

  // ---------------------------------------------------------------------------
  // Pure helpers. They mirror the server's rules (internal/people) so the
  // sampler sees a typo at once; the server stays the authority.
  // ---------------------------------------------------------------------------

  // halfWidth maps the full-width ASCII forms typed by Chinese input methods
  // (U+FF01–FF5E) and the ideographic space to ASCII, as people.halfWidth does.
  function halfWidth(s) {
    return s.replace(/[\uFF01-\uFF5E\u3000]/g, function (c) {
      return c === "\u3000" ? " " : String.fromCharCode(c.charCodeAt(0) - 0xFEE0);
    });
  }

  // trimEdges also drops the zero-width space and BOM that copying from chat
  // apps and spreadsheets leaves behind.
  function trimEdges(s) {
    return s.replace(/^[\s\u200B\uFEFF]+|[\s\u200B\uFEFF]+$/g, "");
  }

  // White space or a dash (Unicode Pd, listed: \p{Pd} is ES2018) inside a number.
  var SEPARATOR = /[\s\u002D\u058A\u05BE\u1400\u1806\u2010-\u2015\u2E17\u2E1A\u2E3A\u2E3B\u2E40\u301C\u3030\u30A0\uFE31\uFE32\uFE58\uFE63\uFF0D]/;

  function fail(code, args) {
    return {error: {code: code, args: args || []}};
  }

  // cleanID: full-width to ASCII, edges trimmed, ASCII letters upper-cased (so a
  // lower-case x check character becomes X); a separator inside is refused
  // rather than removed, because a split number may be two numbers.
  function cleanID(raw) {
    var s = trimEdges(halfWidth(String(raw == null ? "" : raw)));
    if (!s) {
      return fail("required");
    }
    if (SEPARATOR.test(s)) {
      return fail("id_separator");
    }
    return {value: s.replace(/[a-z]+/g, function (c) { return c.toUpperCase(); })};
  }

  function cleanAlnum(raw, min, max) {
    var c = cleanID(raw);
    if (c.error) {
      return c;
    }
    var chars = Array.from(c.value);
    for (var i = 0; i < chars.length; i++) {
      if (!/^[0-9A-Z]$/.test(chars[i])) {
        return fail("id_chars", [i + 1, JSON.stringify(chars[i])]);
      }
    }
    if (max > 0 && (chars.length < min || chars.length > max)) {
      return fail("id_length_range", [min, max, chars.length]);
    }
    return c;
  }

  var WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

  // checkChar is the ISO 7064 MOD 11-2 check character of the first 17 digits
  // of a resident ID number ("" when they are not 17 digits).
  function checkChar(first17) {
    if (!/^[0-9]{17}$/.test(first17)) {
      return "";
    }
    var sum = 0;
    for (var i = 0; i < 17; i++) {
      sum += (first17.charCodeAt(i) - 48) * WEIGHTS[i];
    }
    return "10X98765432".charAt(sum % 11);
  }

  // realDate parses YYYYMMDD as a calendar date at UTC midnight, or null.
  function realDate(s) {
    if (!/^[0-9]{8}$/.test(s)) {
      return null;
    }
    var y = +s.slice(0, 4), m = +s.slice(4, 6), d = +s.slice(6);
    var t = new Date(0);
    t.setUTCFullYear(y, m - 1, d); // unlike Date.UTC, keeps years below 100 as they are
    // 31 April rolls over to 1 May; a real date comes back unchanged.
    if (t.getUTCFullYear() !== y || t.getUTCMonth() !== m - 1 || t.getUTCDate() !== d) {
      return null;
    }
    return t;
  }

  function isoDate(t) {
    return t.toISOString().slice(0, 10);
  }

  // The province-level codes resident ID numbers are issued under (people.validRegion).
  function validRegion(code6) {
    var p = parseInt(code6.slice(0, 2), 10);
    if ((p >= 11 && p <= 15) || (p >= 21 && p <= 23) || (p >= 31 && p <= 37) ||
        (p >= 41 && p <= 46) || (p >= 50 && p <= 54) || (p >= 61 && p <= 65)) {
      return true;
    }
    return p >= 81 && p <= 83 && code6.slice(2) === "0000";
  }

  // checkResidentID validates a resident ID number the way the server does and
  // returns {value} (18 characters, upper-case X) or {error: {code, args}}. A
  // 15-digit first-generation number is converted ("19" before its year, check
  // character computed). The check character is tested last: naming a wrong
  // date or region helps the typist more, and the message never names the
  // expected character (that would invite "fixing" only the last one).
  function checkResidentID(raw, today) {
    var c = cleanID(raw);
    if (c.error) {
      return c;
    }
    var s = c.value;
    var n = Array.from(s).length;
    if (n === 15) {
      if (!/^[0-9]{15}$/.test(s) || !realDate("19" + s.slice(6, 12))) {
        return fail("id_legacy15");
      }
      var first17 = s.slice(0, 6) + "19" + s.slice(6);
      s = first17 + checkChar(first17);
    } else if (n !== 18) {
      return fail("id_length", [n]);
    }
    var chars = Array.from(s);
    for (var i = 0; i < 18; i++) {
      var ch = chars[i];
      if (!(ch >= "0" && ch <= "9" && ch.length === 1) && !(ch === "X" && i === 17)) {
        return fail("id_chars", [i + 1, JSON.stringify(ch)]);
      }
    }
    if (!validRegion(s.slice(0, 6))) {
      return fail("id_region", [s.slice(0, 6)]);
    }
    var birth = realDate(s.slice(6, 14));
    if (!birth) {
      return fail("id_birth_date", [s.slice(6, 14)]);
    }
    if (birth.getUTCFullYear() < 1900) {
      return fail("id_early_birth", [isoDate(birth)]);
    }
    today = today || new Date();
    if (birth.getTime() > Date.UTC(today.getFullYear(), today.getMonth(), today.getDate())) {
      return fail("id_future_birth", [isoDate(birth)]);
    }
    if (checkChar(s.slice(0, 17)) !== s.charAt(17)) {
      return fail("id_check_char");
    }
    return {value: s};
  }

  // checkIDNumber validates a number of the given document type
  // (people.NormalizeIDNumber); permits lose the issue count of old booklets.
  function checkIDNumber(type, raw, today) {
    var r;
    switch (type) {
    case "":
    case "resident_id":
      return checkResidentID(raw, today);
    case "passport":
      return cleanAlnum(raw, 5, 20);
    case "hk_macau_permit":
      r = cleanAlnum(raw, 0, 0);
      if (r.error) {
        return r;
      }
      return /^[HM]([0-9]{8}|[0-9]{10})$/.test(r.value) ? {value: r.value.slice(0, 9)} : fail("id_hk_macau");
    case "taiwan_permit":
      r = cleanAlnum(raw, 0, 0);
      if (r.error) {
        return r;
      }
      return /^([0-9]{8}|[0-9]{10})$/.test(r.value) ? {value: r.value.slice(0, 8)} : fail("id_taiwan");
    default: // "other", and any type the server adds later: it decides
      return cleanAlnum(raw, 5, 30);
    }
  }

  // normalizePhone returns an 11-digit mainland mobile number (people.NormalizePhone):
  // full-width digits made ASCII, spaces and dashes removed, +86/0086/86 dropped
  // when 11 digits follow. An empty value is "required"; whether a phone may be
  // missing (the elderly without one) is the caller's decision.
  function normalizePhone(raw) {
    var s = trimEdges(halfWidth(String(raw == null ? "" : raw)));
    if (!s) {
      return fail("required");
    }
    s = s.replace(new RegExp(SEPARATOR.source, "g"), "");
    var prefixes = ["+86", "0086", "86"];
    for (var i = 0; i < prefixes.length; i++) {
      if (s.indexOf(prefixes[i]) === 0 && s.length - prefixes[i].length === 11) {
        s = s.slice(prefixes[i].length);
        break;
      }
    }
    return /^1[3-9][0-9]{9}$/.test(s) ? {value: s} : fail("phone_format");
  }

  // Masking, as people.MaskName / MaskIDNumber / MaskPhone: the rune count is
  // kept, so a masked value reveals no more than its layout.
  function maskRunes(s, head, tail) {
    var r = Array.from(s);
    return r.map(function (c, i) { return i < head || i >= r.length - tail ? c : "*"; }).join("");
  }

  var COMPOUND_SURNAMES = ("欧阳 歐陽 司马 司馬 诸葛 諸葛 上官 东方 東方 皇甫 尉迟 尉遲 公孙 公孫 慕容 长孙 長孫 " +
    "宇文 司徒 令狐 夏侯 端木 独孤 獨孤 南宫 南宮 西门 西門 万俟 萬俟 轩辕 軒轅 呼延 百里 司空 澹台 澹臺 " +
    "公羊 赫连 赫連 宗政 濮阳 濮陽 申屠 钟离 鍾離 闻人 聞人 太史 鲜于 鮮于 闾丘 閭丘 拓跋 第五 左丘 东郭 " +
    "東郭 羊舌 微生 梁丘 乐正 樂正 漆雕 公冶 仲孙 仲孫 单于 單于 亓官 司寇 巫马 巫馬 谷梁 穀梁 段干 即墨 " +
    "东门 東門 南门 南門").split(" ");

  // maskName keeps the surname (张三丰 → 张**, 欧阳娜娜 → 欧阳**); a one-rune
  // name is masked whole, since its "surname" would be all of it.
  function maskName(name) {
    var r = Array.from(name || "");
    var keep = 1;
    if (r.length < 2) {
      keep = 0;
    } else if (r.length >= 3 && COMPOUND_SURNAMES.indexOf(r[0] + r[1]) >= 0) {
      keep = 2;
    }
    return maskRunes(name || "", keep, 0);
  }

  function maskIDNumber(s) {
    s = s || "";
    return Array.from(s).length < 5 ? maskRunes(s, 0, 0) : maskRunes(s, 2, 2);
  }

  function maskPhone(s) {
    s = s || "";
    var n = Array.from(s).length;
    if (n === 11) {
      return maskRunes(s, 3, 4);
    }
    return n < 5 ? maskRunes(s, 0, 0) : maskRunes(s, 0, 2);
  }

  // format fills the %v (or %s, %d) verbs of a catalog message in order, the
  // way the server's fmt.Sprintf does for these simple messages.
  function format(msg, args) {
    var i = 0;
    args = args || [];
    return String(msg).replace(/%[vsd]/g, function (m) {
      return i < args.length ? String(args[i++]) : m;
    });
  }

  // normalizeTube cleans a scanned or typed tube barcode as the server does:
  // full-width to ASCII, white space removed (scanners and input methods add
  // both), upper-cased, so local counts and the server's tube_code agree.
  function normalizeTube(raw) {
    return halfWidth(String(raw == null ? "" : raw)).replace(/[\s\u200B\uFEFF]+/g, "").toUpperCase();
  }

  // validTube: at most 40 letters, digits and - _ . : (the server's rule).
  function validTube(code) {
    return /^[A-Z0-9._:-]{1,40}$/.test(code);
  }

  // outcomeOf says what an answer to a registration means for the queued item.
  // Only "synced" and "attention" take it out of the pending queue, and only
  // when the body is our API's JSON (hasJSON): a captive portal's 200 page or a
  // proxy's 404 page must not count as an answer. 409/422 are our server's
  // semantic refusals whatever the body.
  function outcomeOf(status, hasJSON) {
    if ((status === 200 || status === 201) && hasJSON) {
      return "synced";
    }
    if (status === 409 || status === 422) {
      return "attention";
    }
    if ((status === 400 || status === 404 || status === 410 || status === 413) && hasJSON) {
      return "attention";
    }
    if (status === 401 || status === 403) {
      return "auth";
    }
    return "retry"; // 0 (no network), 408, 429, 5xx, or an answer that is not ours
  }

  // retryDelay is the wait in ms after the n-th failure in a row: 2, 4, 8 …
  // up to 30 s, at least the server's Retry-After, with random jitter so that
  // thousands of phones coming back online do not retry in step.
  function retryDelay(failures, retryAfterSec, random) {
    var base = Math.min(30, 2 * Math.pow(2, Math.max(0, failures - 1)));
    var d = base / 2 + (random || Math.random)() * base / 2;
    if (retryAfterSec > 0) {
      d = Math.max(d, Math.min(retryAfterSec, 300));
    }
    return Math.round(d * 1000);
  }

  // parseRetryAfter reads Retry-After as seconds (or an HTTP date); 0 if absent.
  function parseRetryAfter(v, now) {
    if (!v) {
      return 0;
    }
    if (/^\s*[0-9]+\s*$/.test(v)) {
      return parseInt(v, 10);
    }
    var t = Date.parse(v);
    return isNaN(t) ? 0 : Math.max(0, Math.round((t - (now == null ? Date.now() : now)) / 1000));
  }

  // newClientID is a version-7 UUID (RFC 9562): the time in milliseconds,
  // then random bits. Ids made one after another sort together, so the
  // server files each at the end of its client-id index instead of at a
  // random place in it (one page written per registration on a busy day).
  function newClientID() {
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    var ms = Date.now();
    for (var i = 5; i >= 0; i--) { // 48 bits, big-endian (no 64-bit bit operators)
      b[i] = ms % 256;
      ms = Math.floor(ms / 256);
    }
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.from(b, function (x) { return (x + 0x100).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  // rfc3339 formats a time in UTC to the second (the API's sampled_at).
  function rfc3339(d) {
    return d.toISOString().replace(/\.[0-9]{3}Z$/, "Z");
  }

  // localDay is the phone's calendar date, YYYY-MM-DD: "synced today" is the
  // sampler's working day, not a UTC one.
  function localDay(d) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate());
  }

  window.shaobingSampler = Object.freeze({
    halfWidth: halfWidth,
    checkChar: checkChar,
    checkResidentID: checkResidentID,
    checkIDNumber: checkIDNumber,
    normalizePhone: normalizePhone,
    normalizeTube: normalizeTube,
    validTube: validTube,
    maskName: maskName,
    maskIDNumber: maskIDNumber,
    maskPhone: maskPhone,
    format: format,
    outcomeOf: outcomeOf,
    retryDelay: retryDelay,
    parseRetryAfter: parseRetryAfter,
    newClientID: newClientID,
    rfc3339: rfc3339,
    localDay: localDay
  });

  var root = document.querySelector("[data-sampler]");
  if (!root) {
    return; // the self-check page loads this file for the helpers only
  }

  // ---------------------------------------------------------------------------
  // Storage. Queue records (store "queue", key client_id):
  //   {client_id, kind: "specimen"|"seal", user (id), username,
  //    state: "pending"|"attention",
  //    created (ms), tube_code, point_id, payload (the exact JSON sent, so a
  //    retry is byte-for-byte the same body), summary {name, id, phone} masked,
  //    error {status, code, field, message} | null}
  // Log records (store "log"): masked summaries of synced registrations, for the
  // "synced today" count and the recent list; personal data leaves the phone's
  // storage as soon as the server has it.
  // ---------------------------------------------------------------------------

  var DB_NAME = "shaobing-sampler";
  var DB_VERSION = 1;

  function openDB() {
    return new Promise(function (resolve, reject) {
      var req;
      try {
        req = window.indexedDB.open(DB_NAME, DB_VERSION);
      } catch (e) {
        reject(e);
        return;
      }
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains("queue")) {
          db.createObjectStore("queue", {keyPath: "client_id"});
        }
        if (!db.objectStoreNames.contains("log")) {
          var log = db.createObjectStore("log", {keyPath: "client_id"});
          log.createIndex("user_day", ["user", "day"]);
          log.createIndex("day", "day");
        }
      };
      req.onsuccess = function () {
        var db = req.result;
        // A newer version of this page in another tab wants to upgrade: let it.
        db.onversionchange = function () { db.close(); };
        resolve(db);
      };
      req.onerror = function () { reject(req.error); };
      req.onblocked = function () { reject(new Error("IndexedDB upgrade blocked by another tab")); };
    });
  }

  // IDBStore wraps the database in promises that resolve when the transaction
  // has committed: a registration counts as saved only then.
  function IDBStore(db) {
    this.db = db;
    this.kind = "indexeddb";
  }

  IDBStore.prototype.run = function (names, mode, fn) {
    var db = this.db;
    return new Promise(function (resolve, reject) {
      // "strict" asks the browser to flush to disk before reporting success
      // (Chrome defaults to "relaxed"); a phone may die in the sun any minute.
      var tx = db.transaction(names, mode, mode === "readwrite" ? {durability: "strict"} : undefined);
      var out = {};
      tx.oncomplete = function () { resolve(out.value); };
      tx.onerror = function () { reject(tx.error); };
      tx.onabort = function () { reject(tx.error || new Error("transaction aborted")); };
      fn(tx, out);
    });
  };

  IDBStore.prototype.all = function () {
    return this.run(["queue"], "readonly", function (tx, out) {
      var r = tx.objectStore("queue").getAll();
      r.onsuccess = function () { out.value = r.result; };
    });
  };

  IDBStore.prototype.put = function (item) {
    return this.run(["queue"], "readwrite", function (tx) { tx.objectStore("queue").put(item); });
  };

  IDBStore.prototype.remove = function (id) {
    return this.run(["queue"], "readwrite", function (tx) { tx.objectStore("queue").delete(id); });
  };

  // replace swaps an item for its corrected version in one transaction, so a
  // crash can leave neither both nor none.
  IDBStore.prototype.replace = function (oldID, item) {
    return this.run(["queue"], "readwrite", function (tx) {
      var q = tx.objectStore("queue");
      q.delete(oldID);
      q.put(item);
    });
  };

  // synced removes an item from the queue and logs its masked summary, in one
  // transaction.
  IDBStore.prototype.synced = function (id, entry) {
    return this.run(["queue", "log"], "readwrite", function (tx) {
      tx.objectStore("queue").delete(id);
      if (entry) {
        tx.objectStore("log").put(entry);
      }
    });
  };

  IDBStore.prototype.logOf = function (user, day) {
    return this.run(["log"], "readonly", function (tx, out) {
      var r = tx.objectStore("log").index("user_day").getAll([user, day]);
      r.onsuccess = function () { out.value = r.result; };
    });
  };

  // prune drops log entries from before day; the queue is never pruned.
  IDBStore.prototype.prune = function (day) {
    return this.run(["log"], "readwrite", function (tx) {
      var r = tx.objectStore("log").index("day").openCursor(IDBKeyRange.upperBound(day, true));
      r.onsuccess = function () {
        var c = r.result;
        if (c) {
          c.delete();
          c.continue();
        }
      };
    });
  };

  // MemoryStore stands in when IndexedDB cannot be opened (some private
  // modes): the page still works online, and a banner says nothing survives a
  // reload.
  function MemoryStore() {
    this.kind = "memory";
    this.queue = {};
    this.log = {};
  }
  function copy(x) { return JSON.parse(JSON.stringify(x)); }
  MemoryStore.prototype.all = function () {
    var q = this.queue;
    return Promise.resolve(Object.keys(q).map(function (k) { return copy(q[k]); }));
  };
  MemoryStore.prototype.put = function (item) { this.queue[item.client_id] = copy(item); return Promise.resolve(); };
  MemoryStore.prototype.remove = function (id) { delete this.queue[id]; return Promise.resolve(); };
  MemoryStore.prototype.replace = function (oldID, item) { delete this.queue[oldID]; return this.put(item); };
  MemoryStore.prototype.synced = function (id, entry) {
    delete this.queue[id];
    if (entry) {
      this.log[entry.client_id] = copy(entry);
    }
    return Promise.resolve();
  };
  MemoryStore.prototype.logOf = function (user, day) {
    var l = this.log;
    return Promise.resolve(Object.keys(l).map(function (k) { return l[k]; })
      .filter(function (e) { return e.user === user && e.day === day; }).map(copy));
  };
  MemoryStore.prototype.prune = function () { return Promise.resolve(); };

  // Small non-personal preferences (chosen point, residence, current tube and
  // what is known of recent tubes) live in localStorage.
  var prefs = {
    get: function (k) {
      try {
        return window.localStorage.getItem("shaobing.sampler." + k);
      } catch (e) {
        return null;
      }
    },
    set: function (k, v) {
      try {
        if (v == null || v === "") {
          window.localStorage.removeItem("shaobing.sampler." + k);
        } else {
          window.localStorage.setItem("shaobing.sampler." + k, v);
        }
      } catch (e) {
        // storage full or disabled: preferences are a convenience only
      }
    },
    getJSON: function (k) {
      try {
        return JSON.parse(this.get(k) || "null");
      } catch (e) {
        return null;
      }
    }
  };

  // ---------------------------------------------------------------------------
  // Page
  // ---------------------------------------------------------------------------

  var TEXT = {};
  try {
    TEXT = JSON.parse(document.getElementById("sampler-text").textContent);
  } catch (e) {
    console.error("sampler: #sampler-text is missing or not JSON", e);
  }

  function t(key, args) {
    return format(TEXT[key] != null ? TEXT[key] : key, args);
  }

  function part(name) {
    return root.querySelector('[data-part="' + name + '"]');
  }

  var el = {
    status: part("status"),
    synced: part("synced"),
    pending: part("pending"),
    attention: part("attention"),
    seals: part("pending-seals"),
    syncNow: part("sync-now"),
    flash: part("flash"),
    net: part("net"),
    auth: part("auth"),
    authText: part("auth-text"),
    authLogin: part("auth-login"),
    authReload: part("auth-reload"),
    others: part("others"),
    storage: part("storage"),
    clock: part("clock"),
    point: document.getElementById("sampler-point"),
    campaign: part("campaign"),
    tube: document.getElementById("sampler-tube"),
    fillBox: part("fill-box"),
    tubeCode: part("tube-code"),
    tubeNote: part("tube-note"),
    fill: part("fill"),
    fillBar: part("fill-bar"),
    seal: part("seal"),
    next: part("next"),
    form: part("person"),
    fields: part("fields"),
    editing: part("editing"),
    editingText: part("editing-text"),
    cancelEdit: part("cancel-edit"),
    idType: document.getElementById("sampler-id-type"),
    idNumber: document.getElementById("sampler-id-number"),
    name: document.getElementById("sampler-name"),
    phone: document.getElementById("sampler-phone"),
    noPhone: document.getElementById("sampler-no-phone"),
    region: document.getElementById("sampler-region"),
    register: part("register"),
    attentionCard: part("attention-card"),
    attentionList: part("attention-list"),
    resendAll: part("resend-all"),
    recentList: part("recent-list"),
    recentEmpty: part("recent-empty")
  };

  var BATCH_MAX = 50;          // specimens per batch request
  var TICK_MS = 15000;         // the sync loop's heartbeat
  var REQUEST_TIMEOUT_MS = 20000; // a request hanging on a weak 4G link counts as a network error
  var RECENT_MAX = 10;

  var S = {
    user: root.getAttribute("data-user-id") || "",
    store: null,
    point: null,       // {id, name, campaignID, campaignName, poolSize, poolLabel, regionCode}
    tube: null,        // {code, capacity, count (known on the server), state, checked, offline}
    items: [],         // this user's queue records, oldest first
    others: [],        // other accounts' pending records on this phone
    log: [],           // this user's synced entries today
    editing: null,     // the attention item being fixed
    busy: false,       // a registration is being saved
    online: navigator.onLine !== false,
    busyServer: false, // the last answer was 429/503/5xx
    auth: "ok",        // ok | login | forbidden | user_changed
    authMessage: "",
    syncing: false,
    again: false,
    recheck: false,    // a tube check answered during a sync: ask again after it
    clockSkew: 0,      // minutes the phone's clock is ahead of the server's (negative: behind)
    failures: 0,
    nextTry: 0,
    // ID numbers registered into each tube during this page session, to catch
    // a double scan of the same person (memory only: it is personal data).
    seen: {}
  };

  var channel = null;
  try {
    channel = new BroadcastChannel("shaobing-sampler");
    channel.onmessage = function () { refresh(); };
  } catch (e) {
    channel = null; // Safari < 15.4: other tabs catch up on their next tick
  }

  function changed() {
    if (channel) {
      channel.postMessage("changed");
    }
  }

  // ---------- small DOM helpers ----------

  function setText(node, text) {
    if (node) {
      node.textContent = text;
    }
  }

  function show(node, on) {
    if (node) {
      node.hidden = !on;
    }
  }

  var flashTimer = 0;

  // flash shows a short message in the live region (read out by screen readers).
  function flash(text, kind) {
    if (!el.flash) {
      return;
    }
    el.flash.className = "alert " + (kind || "success") + " sampler-flash";
    el.flash.textContent = text;
    el.flash.hidden = false;
    clearTimeout(flashTimer);
    if (kind !== "error" && kind !== "warn") {
      flashTimer = setTimeout(function () { el.flash.hidden = true; }, 6000);
    }
  }

  // The API's field names, where the page's differ.
  var FIELD_ALIASES = {tube_code: "tube"};

  function fieldBox(name) {
    return root.querySelector('[data-field="' + (FIELD_ALIASES[name] || name) + '"]');
  }

  function setFieldError(name, msg) {
    var box = fieldBox(name);
    if (!box) {
      return;
    }
    var err = box.querySelector(".field-error");
    var control = box.querySelector("input, select");
    box.classList.toggle("invalid", !!msg);
    if (err) {
      err.textContent = msg || "";
      err.hidden = !msg;
    }
    if (control) {
      if (msg) {
        control.setAttribute("aria-invalid", "true");
      } else {
        control.removeAttribute("aria-invalid");
      }
    }
  }

  function clearFieldErrors() {
    ["tube", "id_type", "id_number", "name", "phone", "region_code"].forEach(function (f) { setFieldError(f, ""); });
  }

  function errorText(err) {
    return t(err.code, err.args);
  }

  function vibrate(ms) {
    if (navigator.vibrate) {
      try {
        navigator.vibrate(ms);
      } catch (e) {
        // not allowed without a user gesture: never mind
      }
    }
  }

  function timeOf(ms) {
    var d = new Date(ms);
    return (d.getHours() < 10 ? "0" : "") + d.getHours() + ":" + (d.getMinutes() < 10 ? "0" : "") + d.getMinutes();
  }

  // ---------- points and tubes ----------

  function pointFromOption(opt) {
    if (!opt || !opt.value) {
      return null;
    }
    return {
      id: parseInt(opt.value, 10),
      name: opt.textContent.trim(),
      campaignID: parseInt(opt.getAttribute("data-campaign-id"), 10),
      campaignName: opt.getAttribute("data-campaign-name") || "",
      poolSize: parseInt(opt.getAttribute("data-pool-size"), 10) || 1,
      poolLabel: opt.getAttribute("data-pool-label") || "",
      regionCode: opt.getAttribute("data-region-code") || ""
    };
  }

  function choosePoint(opt) {
    S.point = pointFromOption(opt);
    prefs.set("point", S.point ? String(S.point.id) : "");
    setText(el.campaign, S.point ? S.point.campaignName + " · " + S.point.poolLabel : "");
    if (el.region && S.point) {
      var want = prefs.get("region." + S.point.id) || S.point.regionCode;
      if (want && el.region.querySelector('option[value="' + cssEscape(want) + '"]')) {
        el.region.value = want;
      }
    }
    S.tube = null;
    var saved = S.point && prefs.get("tube." + S.point.id);
    if (saved) {
      setTube(saved, false);
    }
    render();
  }

  function cssEscape(s) {
    return window.CSS && CSS.escape ? CSS.escape(s) : String(s).replace(/["\\]/g, "\\$&");
  }

  // A tube's state only moves forward; answers may arrive out of order.
  var STATE_RANK = {open: 0, sealed: 1, in_transit: 2, received: 3, resulted: 4};

  function laterState(a, b) {
    if (!a) {
      return b || "open";
    }
    if (!b) {
      return a;
    }
    return (STATE_RANK[b] || 0) > (STATE_RANK[a] || 0) ? b : a;
  }

  // What this phone knows of recent tubes, by code: {capacity, count, state}.
  // Not personal data; it lets the fill counter survive a reload offline.
  function tubeCache() {
    return prefs.getJSON("tubes") || {};
  }

  function rememberTube(code, info) {
    var all = tubeCache();
    var old = all[code] || {};
    all[code] = {
      capacity: info.capacity || old.capacity || 0,
      // A tube only fills up, and answers may arrive out of order.
      count: Math.max(info.count || 0, old.count || 0),
      state: laterState(old.state, info.state),
      at: Date.now()
    };
    var codes = Object.keys(all).sort(function (a, b) { return all[b].at - all[a].at; });
    codes.slice(50).forEach(function (c) { delete all[c]; });
    prefs.set("tubes", JSON.stringify(all));
    if (S.tube && S.tube.code === code) {
      S.tube.capacity = all[code].capacity || S.tube.capacity;
      S.tube.count = all[code].count;
      S.tube.state = all[code].state;
    }
  }

  function pendingIn(code) {
    return S.items.filter(function (i) {
      return i.kind === "specimen" && i.state === "pending" && i.tube_code === code;
    }).length;
  }

  // fillOf counts what the server had at its last answer plus what waits in
  // the queue for this tube.
  function fillOf(tube) {
    return tube ? tube.count + pendingIn(tube.code) : 0;
  }

  function tubeFull(tube) {
    return !!tube && tube.capacity > 0 && fillOf(tube) >= tube.capacity;
  }

  function tubeClosed(tube) {
    return !!tube && tube.state !== "open";
  }

  // setTube makes code the current tube and asks the server what it holds.
  function setTube(raw, focusNext) {
    var code = normalizeTube(raw);
    setFieldError("tube", "");
    if (!code) {
      return;
    }
    if (!S.point) {
      setFieldError("tube", t("point_required"));
      return;
    }
    if (!validTube(code)) {
      setFieldError("tube", t("tube_invalid"));
      el.tube.select();
      return;
    }
    // A resident ID scanned into the tube field is the commonest slip.
    if (code.length >= 15 && !checkResidentID(code).error) {
      setFieldError("tube", t("tube_looks_like_id"));
      el.tube.select();
      return;
    }
    var known = tubeCache()[code];
    if (known && known.state && known.state !== "open") {
      setFieldError("tube", t("tube_closed"));
      el.tube.select();
      return;
    }
    S.tube = {
      code: code,
      capacity: (known && known.capacity) || S.point.poolSize,
      count: (known && known.count) || 0,
      state: "open",
      checked: false,
      offline: false
    };
    // The current tube shows in the fill box; the input is emptied for the
    // next scan, which a USB scanner would otherwise append to this code.
    el.tube.value = "";
    prefs.set("tube." + S.point.id, code);
    render();
    if (focusNext) {
      if (tubeFull(S.tube)) {
        el.tube.select();
      } else {
        el.idNumber.focus();
      }
    }
    checkTube(code);
  }

  function clearTube() {
    S.tube = null;
    if (S.point) {
      prefs.set("tube." + S.point.id, "");
    }
    el.tube.value = "";
    render();
    el.tube.focus();
  }

  async function checkTube(code) {
    if (S.auth === "user_changed") {
      return;
    }
    var res = await request("GET", "/api/v1/tubes/" + encodeURIComponent(code));
    if (!S.tube || S.tube.code !== code) {
      return; // another tube was scanned meanwhile
    }
    if (res.status === 200 && res.data && typeof res.data === "object") {
      var d = res.data;
      // members may come as the list or as its count.
      var count = Array.isArray(d.members) ? d.members.length : Number(d.members || d.count || d.tube_count || 0);
      if (S.syncing) {
        // Items in flight may be in this count and still in the queue: take
        // the count again once the sync is over.
        count = 0;
        S.recheck = true;
      }
      rememberTube(code, {capacity: d.capacity || S.tube.capacity, count: count, state: d.state || "open"});
      S.tube.checked = true;
      S.tube.offline = false;
      if (tubeClosed(S.tube)) {
        S.tube = null;
        prefs.set("tube." + S.point.id, "");
        setFieldError("tube", t("tube_closed"));
        el.tube.focus();
        el.tube.select();
        vibrate([60, 60, 60]);
      }
    } else if (res.status === 404 && res.data) {
      // Unknown to the server: a new tube, made by its first specimen with the
      // campaign's pool size.
      S.tube.checked = true;
      S.tube.offline = false;
      S.tube.isNew = true;
    } else {
      S.tube.offline = true;
    }
    render();
  }

  // ---------- the person form ----------

  // readPerson validates the form; it returns the person object of the API or
  // null after showing the errors next to their fields.
  function readPerson() {
    var errs = {};
    var idType = el.idType.value || "resident_id";
    var id = checkIDNumber(idType, el.idNumber.value, new Date());
    if (id.error) {
      errs.id_number = errorText(id.error);
    }
    var name = trimEdges(el.name.value).replace(/\s+/g, " ");
    if (!name) {
      errs.name = t("required");
    } else if (Array.from(name).length > 50) {
      errs.name = t("name_too_long");
    } else if (/[\u0000-\u001F\u007F]/.test(name)) {
      errs.name = t("control_chars"); // a scanner's GS/CR left in the field
    }
    var phone = "";
    var noPhone = el.noPhone.checked;
    if (trimEdges(el.phone.value)) {
      var p = normalizePhone(el.phone.value);
      if (p.error) {
        errs.phone = errorText(p.error);
      } else {
        phone = p.value;
      }
    } else if (!noPhone) {
      errs.phone = t("phone_required");
    }
    var region = el.region ? el.region.value : "";
    if (el.region && el.region.options.length > 1 && !region) {
      errs.region_code = t("region_required");
    }
    var order = ["id_number", "name", "phone", "region_code"];
    order.forEach(function (f) { setFieldError(f, errs[f] || ""); });
    for (var i = 0; i < order.length; i++) {
      if (errs[order[i]]) {
        var box = fieldBox(order[i]);
        var c = box && box.querySelector("input, select");
        if (c) {
          c.focus();
        }
        vibrate([60, 60, 60]);
        return null;
      }
    }
    return {id_type: idType, id_number: id.value, name: name, phone: phone, region_code: region, no_phone: noPhone && !phone};
  }

  function clearPerson() {
    el.idType.value = "resident_id";
    el.idNumber.value = "";
    el.name.value = "";
    el.phone.value = "";
    el.noPhone.checked = false;
    clearFieldErrors();
    syncPhoneRequired();
  }

  function fillPerson(p) {
    el.idType.value = p.id_type || "resident_id";
    el.idNumber.value = p.id_number || "";
    el.name.value = p.name || "";
    el.phone.value = p.phone || "";
    el.noPhone.checked = !!p.no_phone;
    if (el.region && p.region_code) {
      el.region.value = p.region_code;
    }
    syncPhoneRequired();
  }

  function syncPhoneRequired() {
    var box = fieldBox("phone");
    var label = box && box.querySelector("label");
    if (label) {
      label.classList.toggle("required", !el.noPhone.checked);
    }
    if (el.noPhone.checked) {
      el.phone.removeAttribute("aria-required");
      if (!trimEdges(el.phone.value)) {
        setFieldError("phone", "");
      }
    } else {
      el.phone.setAttribute("aria-required", "true");
    }
  }

  // A pre-registration QR code may carry the person as JSON; fill the form
  // from it. Anything else stays in the ID field as scanned.
  function fromQR(text) {
    var s = trimEdges(text);
    if (s.charAt(0) !== "{") {
      return false;
    }
    var o;
    try {
      o = JSON.parse(s);
    } catch (e) {
      return false;
    }
    if (!o || typeof o !== "object" || !o.id_number) {
      return false;
    }
    fillPerson({
      id_type: typeof o.id_type === "string" && el.idType.querySelector('option[value="' + cssEscape(o.id_type) + '"]') ? o.id_type : "resident_id",
      id_number: String(o.id_number),
      name: o.name ? String(o.name) : "",
      phone: o.phone ? String(o.phone) : "",
      no_phone: false,
      region_code: o.region_code && el.region && el.region.querySelector('option[value="' + cssEscape(String(o.region_code)) + '"]') ? String(o.region_code) : ""
    });
    return true;
  }

  function summaryOf(person) {
    return {name: maskName(person.name), id: maskIDNumber(person.id_number), phone: person.phone ? maskPhone(person.phone) : ""};
  }

  async function onSubmit(evt) {
    evt.preventDefault();
    if (S.busy) {
      return; // a double tap
    }
    S.busy = true;
    try {
      await register();
    } finally {
      S.busy = false;
      render();
    }
  }

  async function register() {
    var editing = S.editing;
    // A tube refused the specimen (409): the person is sampled again into the
    // current tube. Otherwise a fixed item keeps its tube and sampling time,
    // unless the time itself was refused (a phone clock set wrong, since put
    // right): then it is now.
    var retube = !editing || (editing.error && editing.error.status === 409);
    var retime = retube || (editing.error && editing.error.field === "sampled_at");
    if (!S.point) {
      flash(t("point_required"), "error");
      el.point.focus();
      return;
    }
    if (retube) {
      if (!S.tube) {
        setFieldError("tube", t("tube_required"));
        el.tube.focus();
        return;
      }
      if (tubeClosed(S.tube) || tubeFull(S.tube)) {
        flash(t(tubeClosed(S.tube) ? "tube_closed" : "tube_full"), "warn");
        el.tube.focus();
        el.tube.select();
        return;
      }
    }
    var person = readPerson();
    if (!person) {
      return;
    }
    var tubeCode = retube ? S.tube.code : editing.tube_code;
    var key = person.id_type + ":" + person.id_number;
    var dup = (S.seen[tubeCode] && S.seen[tubeCode][key]) || S.items.some(function (i) {
      return i.kind === "specimen" && i.tube_code === tubeCode && (!editing || i.client_id !== editing.client_id) &&
        i.payload.indexOf('"id_number":' + JSON.stringify(person.id_number)) >= 0;
    });
    if (dup && !window.confirm(t("duplicate_confirm", [maskName(person.name), tubeCode]))) {
      return;
    }
    var old = editing ? JSON.parse(editing.payload) : null;
    var body = {
      client_id: "",
      campaign_id: retube ? S.point.campaignID : old.campaign_id,
      sampling_point_id: retube ? S.point.id : old.sampling_point_id,
      tube_code: tubeCode,
      sampled_at: retime ? rfc3339(new Date()) : old.sampled_at,
      person: person
    };
    // The same client_id is kept only for the same body: the server calls a
    // reused id with a different body a conflict. A corrected item is a new
    // attempt; its refused predecessor was definitively not stored.
    var sameBody = old && JSON.stringify(Object.assign({}, old, {client_id: ""})) === JSON.stringify(body);
    body.client_id = sameBody ? old.client_id : newClientID();
    var item = {
      client_id: body.client_id,
      kind: "specimen",
      user: S.user,
      state: "pending",
      created: Date.now(),
      tube_code: tubeCode,
      point_id: body.sampling_point_id,
      payload: JSON.stringify(body),
      summary: summaryOf(person),
      error: null
    };
    try {
      if (editing) {
        await S.store.replace(editing.client_id, item);
      } else {
        await S.store.put(item);
      }
    } catch (e) {
      // Not saved: keep the form as typed so the sampler can try again.
      console.error("sampler: save", e);
      flash(t("save_failed"), "error");
      return;
    }
    // From here the registration is safe on this phone.
    changed();
    S.seen[tubeCode] = S.seen[tubeCode] || {};
    S.seen[tubeCode][key] = true;
    if (el.region && person.region_code) {
      prefs.set("region." + S.point.id, person.region_code);
    }
    S.editing = null;
    clearPerson();
    await refresh();
    vibrate(40);
    var msg = t("registered", [item.summary.name, tubeCode]);
    if (S.tube && S.tube.code === tubeCode) {
      msg += " · " + fillOf(S.tube) + "/" + S.tube.capacity;
    }
    if (S.tube && tubeFull(S.tube)) {
      flash(msg + " — " + t("tube_full"), "warn");
      el.tube.focus();
      el.tube.select(); // ready for the next tube's scan
    } else {
      flash(msg, "success");
      el.idNumber.focus();
    }
    // A dropped network may be back: try now. A busy server said when.
    requestSync(!S.busyServer);
  }

  // ---------- the attention list ----------

  function startFix(item) {
    S.editing = item;
    var body = JSON.parse(item.payload);
    clearFieldErrors();
    fillPerson(body.person);
    var retube = item.error && item.error.status === 409;
    setText(el.editingText, retube ? t("editing_retube", [item.tube_code]) : t("editing_keep", [item.tube_code, timeOf(Date.parse(body.sampled_at))]));
    if (item.error && item.error.field) {
      var f = item.error.field.replace(/^person\./, "");
      if (fieldBox(f)) {
        setFieldError(f, item.error.message);
      }
    }
    render();
    el.form.scrollIntoView({block: "start"});
    el.idNumber.focus();
  }

  function cancelFix() {
    S.editing = null;
    clearPerson();
    render();
  }

  async function resend(item) {
    item.state = "pending";
    item.error = null;
    await S.store.put(item); // unchanged body: same client_id, so never doubled
  }

  async function onAttentionClick(evt) {
    var b = evt.target.closest && evt.target.closest("button[data-action]");
    if (!b) {
      return;
    }
    var item = S.items.filter(function (i) { return i.client_id === b.getAttribute("data-id"); })[0];
    if (!item) {
      return;
    }
    var action = b.getAttribute("data-action");
    if (action === "fix") {
      startFix(item);
      return;
    }
    if (action === "resend") {
      await resend(item);
    } else if (action === "discard") {
      if (!window.confirm(t("discard_confirm", [item.summary ? item.summary.name : item.tube_code]))) {
        return;
      }
      if (S.editing && S.editing.client_id === item.client_id) {
        cancelFix();
      }
      await S.store.remove(item.client_id);
    }
    changed();
    await refresh();
    requestSync(true);
  }

  async function onResendAll() {
    var list = S.items.filter(function (i) { return i.state === "attention"; });
    for (var i = 0; i < list.length; i++) {
      await resend(list[i]);
    }
    changed();
    await refresh();
    requestSync(true);
  }

  // ---------- seal and next tube ----------

  async function onSeal() {
    if (!S.tube) {
      return;
    }
    var code = S.tube.code;
    if (fillOf(S.tube) === 0 || tubeClosed(S.tube)) {
      clearTube(); // empty, or sealed already (the server seals a full tube itself)
      return;
    }
    if (!window.confirm(t("seal_confirm", [code, fillOf(S.tube) + "/" + S.tube.capacity]))) {
      return;
    }
    // The seal waits in the queue behind this tube's pending specimens: sealed
    // first, they would be refused.
    var item = {client_id: newClientID(), kind: "seal", user: S.user, state: "pending", created: Date.now(),
      tube_code: code, point_id: S.point.id, payload: "", summary: null, error: null};
    try {
      await S.store.put(item);
    } catch (e) {
      flash(t("save_failed"), "error");
      return;
    }
    changed();
    rememberTube(code, {state: "sealed"});
    clearTube();
    await refresh();
    flash(t("seal_queued", [code]), "success");
    requestSync(false);
  }

  function onNext() {
    if (!S.tube) {
      el.tube.focus();
      return;
    }
    var n = fillOf(S.tube);
    if (n > 0 && n < S.tube.capacity && !window.confirm(t("next_confirm", [S.tube.code, n + "/" + S.tube.capacity]))) {
      return;
    }
    clearTube();
  }

  // ---------- API ----------

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  // request calls the API and returns {status, data, retryAfter}; status 0
  // means no answer (offline, timeout). On 401/403 it fetches a fresh CSRF
  // token once (the sampler may have signed in again in another tab) and
  // retries; if that fails it records why, for the banner.
  async function request(method, url, body, retried) {
    var ctrl = window.AbortController ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    var res;
    try {
      var headers = {"Accept": "application/json"};
      if (method !== "GET") {
        headers["Content-Type"] = "application/json";
        headers["X-CSRF-Token"] = csrf();
      }
      res = await fetch(url, {method: method, headers: headers, body: body, credentials: "same-origin",
        cache: "no-store", redirect: "manual", signal: ctrl ? ctrl.signal : undefined});
    } catch (e) {
      clearTimeout(timer);
      return {status: 0, data: null, retryAfter: 0};
    }
    noteClock(res.headers.get("Date"));
    var data = null;
    try {
      var ct = res.headers.get("Content-Type") || "";
      if (/json/.test(ct)) {
        data = await res.json();
      }
    } catch (e) {
      data = null; // cut off mid-body: treated as no JSON, so retried
    }
    clearTimeout(timer);
    // A redirect (opaqueredirect, status 0) is never an API answer.
    var status = res.type === "opaqueredirect" ? 0 : res.status;
    if ((status === 401 || status === 403) && !retried) {
      var fresh = await refreshToken();
      if (fresh === "ok") {
        return request(method, url, body, true);
      }
      if (fresh !== "offline") {
        setAuth(fresh, data);
      }
    } else if (status === 401 || status === 403) {
      setAuth(status === 401 ? "login" : "forbidden", data);
    } else if (status > 0) {
      setAuth("ok");
    }
    return {status: status, data: data, retryAfter: parseRetryAfter(res.headers.get("Retry-After"))};
  }

  // noteClock compares the phone's clock with the server's Date header:
  // sampled_at is the phone's time, and the server refuses one in the future.
  // The header has whole seconds and the answer took a while, so only a
  // difference over 2 minutes is worth the sampler's attention.
  function noteClock(date) {
    var server = date ? Date.parse(date) : NaN;
    if (!isNaN(server)) {
      var skew = Math.round((Date.now() - server) / 60000);
      S.clockSkew = Math.abs(skew) > 2 ? skew : 0;
    }
  }

  function setAuth(state, data) {
    if (S.auth === "user_changed") {
      return; // only a reload ends this one
    }
    S.auth = state;
    S.authMessage = data && (data.detail || data.title) ? String(data.detail || data.title) : "";
  }

  // refreshToken reloads this page's HTML (no personal data in it) to read the
  // session's current CSRF token. "login" when the session has ended (the page
  // redirects to the login form), "user_changed" when another account is now
  // signed in: its session must not send this sampler's registrations.
  async function refreshToken() {
    var res;
    try {
      res = await fetch(location.pathname + location.search, {credentials: "same-origin", cache: "no-store",
        redirect: "manual", headers: {"Accept": "text/html"}});
    } catch (e) {
      return "offline";
    }
    if (res.type === "opaqueredirect" || res.status === 401) {
      return "login";
    }
    if (!res.ok) {
      return "forbidden";
    }
    var doc = new DOMParser().parseFromString(await res.text(), "text/html");
    var meta = doc.querySelector('meta[name="csrf-token"]');
    var other = doc.querySelector("[data-sampler]");
    if (!meta || !meta.getAttribute("content")) {
      return "login";
    }
    if (other && other.getAttribute("data-user-id") !== S.user) {
      return "user_changed";
    }
    if (meta.getAttribute("content") === csrf()) {
      return "forbidden"; // same token, still refused: not a stale token
    }
    document.querySelector('meta[name="csrf-token"]').setAttribute("content", meta.getAttribute("content"));
    return "ok";
  }

  // problemOf turns a problem document (or a batch item's error) into the
  // attention record shown to the sampler; field messages come translated.
  function problemOf(status, data) {
    var p = {status: status, code: "", field: "", message: ""};
    if (data && typeof data === "object") {
      p.code = String(data.code || "");
      var first = Array.isArray(data.errors) && data.errors.length ? data.errors[0] : null;
      if (first) {
        p.field = String(first.field || "");
        p.message = String(first.detail || first.message || "");
      } else {
        p.field = String(data.field || "");
        p.message = String(data.message || data.detail || data.title || "");
      }
    }
    if (!p.message) {
      p.message = t("refused", [status]);
    }
    return p;
  }

  // ---------- sync ----------

  // forget drops an item from the in-memory queue at once, so that the tube's
  // fill (server count + pending) never counts it twice before the next refresh.
  function forget(id) {
    S.items = S.items.filter(function (i) { return i.client_id !== id; });
  }

  async function settleSynced(item, data) {
    var entry = null;
    if (item.kind === "specimen") {
      entry = {client_id: item.client_id, user: item.user, day: localDay(new Date()), at: Date.now(),
        tube_code: item.tube_code, summary: item.summary};
    }
    await S.store.synced(item.client_id, entry);
    forget(item.client_id);
    if (entry) {
      S.log.push(entry);
    }
    if (data && data.tube_code) {
      rememberTube(data.tube_code, {capacity: data.tube_capacity, count: data.tube_count, state: data.tube_state});
    }
  }

  async function settleAttention(item, problem) {
    item.state = "attention";
    item.error = problem;
    await S.store.put(item);
  }

  // settle applies one answer to one item; it returns the outcome.
  async function settle(item, status, data, hasJSON) {
    var outcome = outcomeOf(status, hasJSON);
    if (outcome === "synced") {
      await settleSynced(item, data);
    } else if (outcome === "attention") {
      await settleAttention(item, problemOf(status, data && (data.error || data)));
      if (status === 409 && S.tube && S.tube.code === item.tube_code) {
        checkTube(item.tube_code); // the tube may be full or sealed elsewhere
      }
    }
    return outcome;
  }

  function isObject(x) {
    return !!x && typeof x === "object" && !Array.isArray(x);
  }

  // sendOne sends one specimen; it returns true when the item got a
  // definitive answer.
  async function sendOne(item) {
    var res = await request("POST", "/api/v1/specimens", item.payload);
    var outcome = await settle(item, res.status, res.data, isObject(res.data));
    return noteAnswer(outcome, res);
  }

  // sendBatch sends up to BATCH_MAX specimens in one request. A batch refused
  // as a whole (too large, malformed, endpoint missing) is sent item by item,
  // which gets each item its own definitive answer.
  async function sendBatch(items) {
    var body = '{"specimens":[' + items.map(function (i) { return i.payload; }).join(",") + "]}";
    var res = await request("POST", "/api/v1/specimens/batch", body);
    if (res.status === 200 && isObject(res.data) && Array.isArray(res.data.results)) {
      var byID = {};
      res.data.results.forEach(function (r) {
        if (isObject(r) && r.client_id) {
          byID[r.client_id] = r;
        }
      });
      var all = true;
      for (var i = 0; i < items.length; i++) {
        var r = byID[items[i].client_id];
        // An item the answer does not mention stays pending.
        var outcome = r ? await settle(items[i], Number(r.status), r, true) : "retry";
        if (outcome !== "synced" && outcome !== "attention") {
          all = false;
        }
      }
      return noteAnswer(all ? "synced" : "retry", res);
    }
    if (res.status === 400 || res.status === 404 || res.status === 405 || res.status === 413 || res.status === 422) {
      for (var j = 0; j < items.length; j++) {
        if (!(await sendOne(items[j]))) {
          return false;
        }
      }
      return true;
    }
    return noteAnswer(outcomeOf(res.status, false), res);
  }

  async function sendSeal(item) {
    var res = await request("POST", "/api/v1/tubes/" + encodeURIComponent(item.tube_code) + "/seal", "");
    var outcome;
    if (res.status === 200 && isObject(res.data)) {
      await S.store.remove(item.client_id);
      forget(item.client_id);
      rememberTube(item.tube_code, {state: res.data.state || "sealed", capacity: res.data.capacity});
      outcome = "synced";
    } else if ((res.status === 404 || res.status === 409) && isObject(res.data)) {
      // Unknown (nothing in it reached the server) or no longer open: either
      // way there is nothing left to seal.
      await S.store.remove(item.client_id);
      forget(item.client_id);
      outcome = "synced";
    } else {
      outcome = await settle(item, res.status, res.data, isObject(res.data));
    }
    return noteAnswer(outcome, res);
  }

  // noteAnswer updates the connection state and the backoff from one answer;
  // true when the sync may go on.
  function noteAnswer(outcome, res) {
    S.online = res.status !== 0;
    S.busyServer = res.status === 429 || res.status >= 500;
    if (outcome === "synced" || outcome === "attention") {
      S.failures = 0;
      S.nextTry = 0;
      return true;
    }
    S.failures++;
    S.nextTry = Date.now() + retryDelay(S.failures, res.retryAfter);
    return false;
  }

  // drain sends the queue: specimens oldest first (in batches), then the seals
  // whose tube has nothing pending any more.
  async function drain() {
    for (var round = 0; round < 1000; round++) {
      await refresh();
      if (S.auth === "user_changed") {
        return;
      }
      var pending = S.items.filter(function (i) { return i.kind === "specimen" && i.state === "pending"; });
      if (!pending.length) {
        break;
      }
      var chunk = pending.slice(0, BATCH_MAX);
      var ok = chunk.length === 1 ? await sendOne(chunk[0]) : await sendBatch(chunk);
      changed();
      if (!ok) {
        return;
      }
    }
    var seals = S.items.filter(function (i) {
      return i.kind === "seal" && i.state === "pending" && pendingIn(i.tube_code) === 0;
    });
    for (var k = 0; k < seals.length; k++) {
      var ok2 = await sendSeal(seals[k]);
      changed();
      if (!ok2) {
        return;
      }
    }
  }

  // withSyncLock runs fn in at most one tab at a time. Without the Web Locks
  // API two tabs may send the same item at once; that is safe, because the
  // server answers a repeated client_id with the original specimen.
  function withSyncLock(fn) {
    if (navigator.locks && navigator.locks.request) {
      return navigator.locks.request("shaobing-sampler-sync", {ifAvailable: true}, function (lock) {
        return lock ? fn() : null; // another tab is syncing; it tells us when done
      });
    }
    return fn();
  }

  // requestSync starts a sync unless one runs (then it runs again after) or
  // the backoff says wait; force (the online event, the button) skips the wait.
  function requestSync(force) {
    if (!S.store || S.auth === "user_changed") {
      return;
    }
    if (!force && Date.now() < S.nextTry) {
      return;
    }
    if (S.syncing) {
      S.again = true;
      return;
    }
    S.syncing = true;
    S.again = false;
    render();
    withSyncLock(drain).catch(function (e) {
      console.error("sampler: sync", e);
    }).then(function () {
      S.syncing = false;
      return refresh();
    }).then(function () {
      if (S.recheck && S.tube) {
        S.recheck = false;
        checkTube(S.tube.code);
      }
      if (S.again) {
        requestSync(false);
      }
    });
  }

  // ---------- reading the store and rendering ----------

  var refreshing = null;

  // refresh reloads the queue and today's log from the store (another tab may
  // have changed them) and renders. Calls during a refresh share it.
  function refresh() {
    if (!S.store) {
      return Promise.resolve();
    }
    if (refreshing) {
      return refreshing;
    }
    refreshing = Promise.all([S.store.all(), S.store.logOf(S.user, localDay(new Date()))]).then(function (r) {
      var mine = [], others = [];
      r[0].forEach(function (i) { (i.user === S.user ? mine : others).push(i); });
      mine.sort(function (a, b) { return a.created - b.created; });
      S.items = mine;
      S.others = others;
      S.log = r[1];
      if (S.editing) {
        // Keep editing only while the item still needs attention.
        S.editing = mine.filter(function (i) { return i.client_id === S.editing.client_id && i.state === "attention"; })[0] || null;
      }
      render();
    }).catch(function (e) {
      console.error("sampler: read store", e);
    }).then(function () {
      refreshing = null;
    });
    return refreshing;
  }

  function countOf(pred) {
    return S.items.filter(pred).length;
  }

  function render() {
    var pending = countOf(function (i) { return i.kind === "specimen" && i.state === "pending"; });
    var seals = countOf(function (i) { return i.kind === "seal" && i.state === "pending"; });
    var attention = countOf(function (i) { return i.state === "attention"; });
    var synced = S.log.length;
    var othersPending = S.others.length;

    setText(el.synced, String(synced));
    setText(el.pending, String(pending));
    setText(el.attention, String(attention));
    setText(el.seals, seals ? t("pending_seals", [seals]) : "");
    show(el.seals, seals > 0);
    var st = el.status;
    st.setAttribute("data-synced", String(synced));
    st.setAttribute("data-pending", String(pending));
    st.setAttribute("data-attention", String(attention));
    st.setAttribute("data-pending-seals", String(seals));
    st.setAttribute("data-others", String(othersPending));
    st.setAttribute("data-online", String(S.online));
    st.setAttribute("data-auth", S.auth);
    st.setAttribute("data-syncing", String(S.syncing));
    st.setAttribute("data-storage", S.store ? S.store.kind : "");
    st.classList.toggle("has-attention", attention > 0);
    if (el.syncNow) {
      el.syncNow.disabled = S.syncing || pending + seals === 0;
      el.syncNow.setAttribute("aria-busy", String(S.syncing));
    }

    // Banners: the session first (nothing syncs until it is fixed), then the network.
    var authOn = S.auth !== "ok";
    show(el.auth, authOn);
    if (authOn) {
      var key = S.auth === "user_changed" ? "user_changed" : S.auth === "forbidden" ? "forbidden" : "relogin";
      setText(el.authText, t(key) + (S.auth === "forbidden" && S.authMessage ? " " + S.authMessage : ""));
      show(el.authLogin, S.auth === "login" || S.auth === "forbidden");
      show(el.authReload, S.auth === "user_changed");
    }
    var netText = "";
    if (!S.online && pending + seals > 0) {
      netText = t("offline");
    } else if (!S.online) {
      netText = t("offline_idle");
    } else if (S.busyServer && pending + seals > 0) {
      netText = t("server_busy");
    }
    setText(el.net, netText);
    show(el.net, !!netText && !authOn);
    if (el.others) {
      var names = {};
      S.others.forEach(function (i) { names[i.username || i.user] = true; });
      setText(el.others, othersPending ? t("other_user", [othersPending, Object.keys(names).join("、")]) : "");
      show(el.others, othersPending > 0);
    }
    show(el.storage, !!S.store && S.store.kind === "memory");
    if (el.clock) {
      setText(el.clock, S.clockSkew ? t(S.clockSkew > 0 ? "clock_ahead" : "clock_behind", [Math.abs(S.clockSkew)]) : "");
      show(el.clock, S.clockSkew !== 0);
    }

    // The tube.
    var tube = S.tube;
    var count = fillOf(tube);
    var full = tubeFull(tube);
    root.setAttribute("data-tube", tube ? tube.code : "");
    root.setAttribute("data-tube-count", String(tube ? count : 0));
    root.setAttribute("data-tube-capacity", String(tube ? tube.capacity : 0));
    root.setAttribute("data-tube-full", String(full));
    show(el.fillBox, !!tube);
    if (tube) {
      setText(el.tubeCode, tube.code);
      setText(el.fill, count + "/" + tube.capacity);
      el.fill.classList.toggle("full", full);
      if (el.fillBar) {
        el.fillBar.max = tube.capacity;
        el.fillBar.value = Math.min(count, tube.capacity);
      }
      var note = full ? t("tube_full") : tube.offline ? t("tube_offline") : tube.isNew && count === 0 ? t("tube_new") : "";
      setText(el.tubeNote, note);
      show(el.tubeNote, !!note);
      el.tubeNote.className = full ? "alert warn sampler-tube-note" : "muted sampler-tube-note";
      el.seal.classList.toggle("primary", full);
    }

    // The form: usable with a point and an open, not full tube, or while
    // fixing an item that keeps its own tube.
    var editing = S.editing;
    var retube = !editing || (editing.error && editing.error.status === 409);
    var usable = !!S.point && !!S.store && (!retube || (tube && !full && !tubeClosed(tube)));
    el.fields.disabled = !usable;
    el.register.disabled = !usable || S.busy;
    setText(el.register, editing ? t("resend_fixed") : t("register"));
    show(el.editing, !!editing);
    el.form.classList.toggle("editing", !!editing);

    renderAttention();
    renderRecent();
  }

  function li(summary, tubeCode, at, badgeText, badgeClass) {
    var item = document.createElement("li");
    var head = document.createElement("div");
    head.className = "sampler-item-head";
    var who = document.createElement("span");
    who.className = "sampler-who";
    who.textContent = summary ? summary.name : "";
    head.appendChild(who);
    var badge = document.createElement("span");
    badge.className = "badge " + badgeClass;
    badge.textContent = badgeText;
    head.appendChild(badge);
    item.appendChild(head);
    var meta = document.createElement("div");
    meta.className = "sampler-item-meta";
    var parts = [];
    if (summary) {
      parts.push(summary.id);
      if (summary.phone) {
        parts.push(summary.phone);
      }
    }
    var ids = document.createElement("span");
    ids.className = "masked";
    ids.textContent = parts.join(" ");
    meta.appendChild(ids);
    var where = document.createElement("span");
    where.className = "muted";
    where.textContent = t("tube_short") + " " + tubeCode + " · " + timeOf(at);
    meta.appendChild(where);
    item.appendChild(meta);
    return item;
  }

  function button(text, action, id, cls) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "btn small" + (cls ? " " + cls : "");
    b.textContent = text;
    b.setAttribute("data-action", action);
    b.setAttribute("data-id", id);
    return b;
  }

  // Lists are rebuilt only when their content changes: a rebuild between a
  // finger's touch and its click would swallow the click.
  var drawn = {attention: "", recent: ""};

  function renderAttention() {
    var list = S.items.filter(function (i) { return i.state === "attention"; });
    show(el.attentionCard, list.length > 0);
    if (el.resendAll) {
      show(el.resendAll, list.length > 1);
    }
    var sig = JSON.stringify([S.editing && S.editing.client_id, list.map(function (i) { return [i.client_id, i.error]; })]);
    if (sig === drawn.attention) {
      return;
    }
    drawn.attention = sig;
    var ul = el.attentionList;
    while (ul.firstChild) {
      ul.removeChild(ul.firstChild);
    }
    list.forEach(function (i) {
      var row = i.kind === "seal" ?
        li(null, i.tube_code, i.created, t("seal_item"), "danger") :
        li(i.summary, i.tube_code, i.created, t("state_attention"), "danger");
      row.setAttribute("data-client-id", i.client_id);
      var msg = document.createElement("p");
      msg.className = "field-error sampler-problem";
      var label = i.error && i.error.field ? fieldLabel(i.error.field) : "";
      msg.textContent = (label ? label + "：" : "") + (i.error ? i.error.message : "");
      row.appendChild(msg);
      var actions = document.createElement("div");
      actions.className = "actions";
      if (i.kind === "specimen") {
        actions.appendChild(button(t("fix"), "fix", i.client_id, "primary"));
      }
      actions.appendChild(button(t("resend"), "resend", i.client_id));
      actions.appendChild(button(t("discard"), "discard", i.client_id, "danger"));
      row.appendChild(actions);
      if (S.editing && S.editing.client_id === i.client_id) {
        row.classList.add("editing");
      }
      ul.appendChild(row);
    });
  }

  function fieldLabel(field) {
    var box = fieldBox(field.replace(/^person\./, ""));
    var label = box && box.querySelector("label");
    return label ? label.textContent.trim() : "";
  }

  function renderRecent() {
    var rows = [];
    S.items.forEach(function (i) {
      if (i.kind === "specimen" && i.state === "pending") {
        rows.push({at: i.created, s: i.summary, tube: i.tube_code, text: t("state_pending"), cls: "warn"});
      }
    });
    S.log.forEach(function (e) {
      rows.push({at: e.at, s: e.summary, tube: e.tube_code, text: t("state_synced"), cls: "ok"});
    });
    rows.sort(function (a, b) { return b.at - a.at; });
    rows = rows.slice(0, RECENT_MAX);
    var sig = JSON.stringify(rows);
    if (sig === drawn.recent) {
      return;
    }
    drawn.recent = sig;
    var ul = el.recentList;
    while (ul.firstChild) {
      ul.removeChild(ul.firstChild);
    }
    rows.forEach(function (r) {
      ul.appendChild(li(r.s, r.tube, r.at, r.text, r.cls));
    });
    show(el.recentEmpty, rows.length === 0);
  }

  // ---------- wiring ----------

  function bind() {
    el.point.addEventListener("change", function () {
      choosePoint(el.point.options[el.point.selectedIndex]);
      el.tube.focus();
    });

    // A USB scanner types the code and presses Enter; scan.js fires "change".
    el.tube.addEventListener("keydown", function (evt) {
      if (evt.key === "Enter") {
        evt.preventDefault();
        setTube(el.tube.value, true);
      }
    });
    el.tube.addEventListener("change", function () {
      if (normalizeTube(el.tube.value) && (!S.tube || normalizeTube(el.tube.value) !== S.tube.code)) {
        setTube(el.tube.value, true);
      }
    });
    el.tube.addEventListener("input", function () { setFieldError("tube", ""); });
    // Typing or a scan replaces what is there rather than adding to it.
    el.tube.addEventListener("focus", function () { el.tube.select(); });

    el.seal.addEventListener("click", onSeal);
    el.next.addEventListener("click", onNext);

    el.idNumber.addEventListener("change", function () {
      if (fromQR(el.idNumber.value)) {
        el.name.focus();
      }
    });
    // Enter in the ID and name fields moves on (a scanner ends with Enter);
    // Enter in the phone field registers.
    el.idNumber.addEventListener("keydown", function (evt) {
      if (evt.key !== "Enter") {
        return;
      }
      evt.preventDefault();
      if (fromQR(el.idNumber.value)) {
        el.name.focus();
        return;
      }
      var id = checkIDNumber(el.idType.value, el.idNumber.value, new Date());
      setFieldError("id_number", id.error ? errorText(id.error) : "");
      if (!id.error) {
        el.idNumber.value = id.value;
        el.name.focus();
      }
    });
    el.idNumber.addEventListener("blur", function () {
      if (!trimEdges(el.idNumber.value) || el.idNumber.value.charAt(0) === "{") {
        return;
      }
      var id = checkIDNumber(el.idType.value, el.idNumber.value, new Date());
      setFieldError("id_number", id.error ? errorText(id.error) : "");
      if (!id.error) {
        el.idNumber.value = id.value; // shows the normal form: upper-case X, half-width digits
      }
    });
    el.name.addEventListener("keydown", function (evt) {
      if (evt.key === "Enter") {
        evt.preventDefault();
        el.phone.focus();
      }
    });
    el.phone.addEventListener("blur", function () {
      if (!trimEdges(el.phone.value)) {
        return;
      }
      var p = normalizePhone(el.phone.value);
      setFieldError("phone", p.error ? errorText(p.error) : "");
      if (!p.error) {
        el.phone.value = p.value;
      }
    });
    ["idNumber", "name", "phone"].forEach(function (k) {
      el[k].addEventListener("input", function () {
        setFieldError({idNumber: "id_number", name: "name", phone: "phone"}[k], "");
      });
    });
    el.idType.addEventListener("change", function () { setFieldError("id_number", ""); });
    el.noPhone.addEventListener("change", syncPhoneRequired);
    if (el.region) {
      el.region.addEventListener("change", function () { setFieldError("region_code", ""); });
    }
    el.form.addEventListener("submit", onSubmit);
    el.cancelEdit.addEventListener("click", cancelFix);
    el.attentionList.addEventListener("click", onAttentionClick);
    if (el.resendAll) {
      el.resendAll.addEventListener("click", onResendAll);
    }
    el.syncNow.addEventListener("click", function () {
      S.failures = 0;
      requestSync(true);
    });
    if (el.authReload) {
      el.authReload.addEventListener("click", function () { location.reload(); });
    }

    window.addEventListener("online", function () {
      S.online = true;
      S.failures = 0;
      requestSync(true);
    });
    window.addEventListener("offline", function () {
      S.online = false;
      render();
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") {
        refresh().then(function () { requestSync(false); });
      }
    });
    setInterval(function () {
      // Also rolls "synced today" over at midnight and catches other tabs' work.
      refresh().then(function () { requestSync(false); });
    }, TICK_MS);
    window.addEventListener("beforeunload", function (evt) {
      // Only the in-memory fallback loses its queue with the page.
      if (S.store && S.store.kind === "memory" && S.items.length) {
        evt.preventDefault();
        evt.returnValue = "";
      }
    });
  }

  async function init() {
    // Label each queue record with the account, so a phone shared between
    // samplers never sends one person's registrations under another's session.
    var username = root.getAttribute("data-username") || "";
    try {
      if (!window.indexedDB) {
        throw new Error("no IndexedDB");
      }
      S.store = new IDBStore(await openDB());
    } catch (e) {
      console.warn("sampler: IndexedDB unavailable, queue kept in memory only", e);
      S.store = new MemoryStore();
    }
    var basePut = S.store.put;
    S.store.put = function (item) {
      item.username = item.username || username;
      return basePut.call(this, item);
    };
    var baseReplace = S.store.replace;
    S.store.replace = function (oldID, item) {
      item.username = item.username || username;
      return baseReplace.call(this, oldID, item);
    };
    // Ask the browser not to evict the queue under storage pressure.
    if (navigator.storage && navigator.storage.persist) {
      navigator.storage.persist().catch(function () {});
    }
    var yesterday = new Date();
    yesterday.setDate(yesterday.getDate() - 1);
    S.store.prune(localDay(yesterday)).catch(function () {});

    bind();
    var saved = prefs.get("point");
    var opt = saved && el.point.querySelector('option[value="' + cssEscape(saved) + '"]');
    if (!opt && el.point.options.length === 1) {
      opt = el.point.options[0];
    }
    if (opt) {
      el.point.value = opt.value;
    }
    choosePoint(el.point.options[el.point.selectedIndex]);
    syncPhoneRequired();
    await refresh();
    root.setAttribute("data-ready", "true");
    if (!S.point) {
      el.point.focus();
    } else if (!S.tube) {
      el.tube.focus();
    } else {
      el.idNumber.focus();
    }
    requestSync(true);
    keepPageOffline();
  }

  // keepPageOffline registers the service worker that lets this page load without a
  // network, and hands it the static files the page uses. Without one (an insecure
  // origin, an old browser) the queue still works while the tab stays open.
  function keepPageOffline() {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) {
      return;
    }
    navigator.serviceWorker.register("/screening/sampler-sw.js", {scope: "/screening/sampler"}).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (reg) {
      var urls = [];
      document.querySelectorAll('script[src^="/static/"], link[rel="stylesheet"][href^="/static/"], link[rel="icon"][href^="/static/"]').forEach(function (n) {
        urls.push(n.getAttribute("src") || n.getAttribute("href"));
      });
      if (reg.active) {
        reg.active.postMessage({cache: urls});
      }
      root.setAttribute("data-offline-ready", "true");
    }).catch(function (e) {
      console.warn("sampler: no service worker; a reload needs the network", e);
    });
  }

  init().catch(function (e) {
    console.error("sampler: init", e);
    flash(t("save_failed"), "error");
  });
})();
