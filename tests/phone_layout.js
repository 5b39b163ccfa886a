// Runs in the page. A tap target is what a finger hits (44 px wide and high at least): a checkbox's or
// radio's label when it has one.
// Links inside a sentence (display: inline, with text around them) are the documented exception: the
// sentence is their context, and making them 44 px tall would tear the paragraph apart.
// Called as (limits) => problems, with limits = {MIN_TAP, MAX_HEADER}; returns sentences.
({ MIN_TAP, MAX_HEADER }) => {
  const width = window.innerWidth;
  const problems = [];
  const shown = el => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && !el.closest("[hidden]");
  };
  const name = el => {
    const text = (el.innerText || el.value || el.getAttribute("aria-label") || el.name || "").trim();
    return `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} "${text.replace(/\s+/g, " ").slice(0, 40)}"`;
  };
  const inSentence = el => {
    if (el.tagName !== "A" || getComputedStyle(el).display !== "inline") return false;
    const around = el.parentElement.textContent.replace(el.textContent, "");
    return /[^\s·|]/.test(around);
  };
  // The part of the screen an element can show in: the viewport cut by every scrolling or clipping box.
  const window_of = el => {
    let left = 0, right = width;
    for (let p = el.parentElement; p && p !== document.body && p !== document.documentElement; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== "visible") {
        const box = p.getBoundingClientRect();
        left = Math.max(left, box.left);
        right = Math.min(right, box.right);
      }
    }
    return [left, right];
  };
  const scrolled = document.scrollingElement.scrollWidth;
  if (scrolled > width) problems.push(`the page scrolls sideways: ${scrolled} px wide on a ${width} px screen`);
  const header = document.querySelector("header.topbar");
  if (header && header.getBoundingClientRect().height > MAX_HEADER)
    problems.push(`the header is ${Math.round(header.getBoundingClientRect().height)} px tall`);
  const seen = new Set();
  for (const el of document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary")) {
    if (!shown(el)) continue;
    const target = (el.type === "checkbox" || el.type === "radio") && el.closest("label") || el;
    if (seen.has(target)) continue;
    seen.add(target);
    const box = target.getBoundingClientRect();
    const [left, right] = window_of(target);
    if (box.left < left - 1 || box.right > right + 1)
      problems.push(`${name(el)} is cut off: ${Math.round(box.left)}..${Math.round(box.right)} px of ${Math.round(left)}..${Math.round(right)}`);
    if (!inSentence(el) && (box.height < MIN_TAP || box.width < MIN_TAP))
      problems.push(`${name(el)} is a ${Math.round(box.width)} x ${Math.round(box.height)} px tap target`);
  }
  // A table shown as cards: each cell carries its column's name, the same the table's header says.
  for (const table of document.querySelectorAll("table.list")) {
    // A column headed by a control (the print list's "select all") has no name to repeat.
    const heads = [...table.querySelectorAll("thead th")].map(th => th.querySelector("input") ? "" : th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      const cells = [...row.children];
      if (cells.length === 1 && cells[0].colSpan > 1) continue;
      cells.forEach((cell, i) => {
        const label = cell.dataset.label === undefined ? null : cell.dataset.label;
        if (heads[i] && label !== heads[i])
          problems.push(`#${table.id || "table"} cell ${i + 1} is labelled ${JSON.stringify(label)}, its column is "${heads[i]}"`);
      });
      if (getComputedStyle(row).display === "table-row" && table.getBoundingClientRect().right > width + 1)
        problems.push(`#${table.id || "table"} is a table wider than the screen`);
    }
  }
  return problems;
}
