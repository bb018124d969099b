for (const svg of document.querySelectorAll("svg.chart")) {
  const box = svg.getBoundingClientRect();
  svg.setAttribute("data-rendered-size", Math.round(box.width) + "x" + Math.round(box.height));
  for (const bar of svg.querySelectorAll(".bar")) {
    const b = bar.getBBox();
    bar.setAttribute("data-rendered-size", b.width.toFixed(2) + "x" + b.height.toFixed(2));
  }
}
