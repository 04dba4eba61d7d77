// How an SMS text is sent, as the daemon's pdu package does it: the GSM
// 7-bit alphabet (an extension character takes two septets) when every
// character is in it, else UCS-2; one part holds 160 septets or 70 UCS-2
// units, a part of a longer message 153 or 67 (the rest is the
// concatenation header), and an escape or a surrogate pair is never
// split across two parts.
(function (root) {
  "use strict";
  var basic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var ext = { "\f": 0x0a, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2f, "[": 0x3c, "~": 0x3d, "]": 0x3e, "|": 0x40, "€": 0x65 };
  var ESC = 0x1b;

  // septets is text in GSM 7-bit codes, or null when a character has none.
  function septets(text) {
    var out = [];
    for (var ch of text) {
      var i = basic.indexOf(ch);
      if (i >= 0) { out.push(i); continue; }
      if (Object.prototype.hasOwnProperty.call(ext, ch)) { out.push(ESC, ext[ch]); continue; }
      return null;
    }
    return out;
  }

  function chunks7(s, bs) {
    var n = 0, start = 0, end = bs;
    while (end < s.length) {
      if (s[end - 1] === ESC && s[end - 2] !== ESC) end--;
      n++; start = end; end = start + bs;
    }
    return n + 1;
  }

  function chunksUCS2(units, bs) {
    var n = 0, start = 0, end = bs;
    while (end < units.length) {
      var u = units.charCodeAt(end - 1);
      if (u >= 0xd800 && u < 0xdc00) end--;
      n++; start = end; end = start + bs;
    }
    return n + 1;
  }

  // smsInfo is {encoding: "gsm7"|"ucs2", units, parts, left}: units are
  // septets or UTF-16 units, left what still fits in the last part.
  function smsInfo(text) {
    if (text === "") return { encoding: "gsm7", units: 0, parts: 0, left: 160 };
    var s = septets(text), single, multi, units, parts;
    if (s) {
      units = s.length; single = 160; multi = 153;
      parts = units <= single ? 1 : chunks7(s, multi);
    } else {
      units = text.length; single = 70; multi = 67;
      parts = units <= single ? 1 : chunksUCS2(text, multi);
    }
    var left = parts === 1 ? single - units : parts * multi - units;
    return { encoding: s ? "gsm7" : "ucs2", units: units, parts: parts, left: Math.max(0, left) };
  }
  root.smsInfo = smsInfo;
})(window);
