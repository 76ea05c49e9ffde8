// Where the browser broke a line badly, in French: a line that starts with « : ; ! ? » % »,
// a line that ends with « «, a number split from its digits, from « n° » or from « ODD ».
// Measures each visible character with Range.getClientRects: a character lower than the one
// before it starts a new line. Returns a list of « …before⏎after… » snippets.
() => {
  const found = [];
  const range = document.createRange();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let lastTop = null, last = "", word = "", prevWord = "", tail = "";
  const starters = ":;!?»%";
  const isDigit = (c) => c >= "0" && c <= "9";
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.data;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (/\s/.test(ch)) {  // ASCII or no-break: a word ends here
        if (word) { prevWord = word; word = ""; }
        if (ch === " " || ch === "\n" || ch === "\t") continue;
      }
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const rect = range.getClientRects()[0];
      if (!rect || rect.width === 0 || rect.height === 0) continue;  // hidden (the preheader)
      if (/\s/.test(ch)) continue;
      if (lastTop !== null && rect.top > lastTop + rect.height / 2) {
        const bad =
          starters.includes(ch) || last === "«" ||
          (isDigit(ch) && (isDigit(last) || last === "°" || (word === "" && prevWord === "ODD")));
        if (bad) found.push(tail.slice(-24) + "⏎" + text.slice(i, i + 24));
      }
      lastTop = rect.top;
      last = ch;
      word += ch;
      tail = (tail + (tail && word.length === 1 ? " " : "") + ch).slice(-48);
    }
  }
  return found;
}
