/* The headquarters dashboard's charts (Apache ECharts, served from /static/vendor/echarts).
   Each chart is drawn from the table of numbers beside it — the statistics RPC's numbers
   as the page printed them (data-value) — so a chart cannot show what the table does not.
   Once drawn, the chart is shown and its table folded away, one click off; without
   JavaScript (or ECharts) the tables stay open. No inline script or style: the CSP allows
   only this site's files, and tooltips are drawn on the canvas (renderMode richText). */
(function () {
  "use strict";
  var COLOURS = ["#0b5c4a", "#d4a72c", "#0a58ca", "#b3261e", "#6e2b91"];
  if (!window.echarts) { return; }

  function read(table, columns) {
    var names = columns.map(function (column) {
      var head = table.querySelector('thead th[data-column="' + column + '"]');
      return head ? head.textContent.trim() : column;
    });
    var categories = [], values = columns.map(function () { return []; });
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (row) {
      var label = row.querySelector('th[scope="row"]');
      categories.push(label ? label.textContent.trim() : "");
      columns.forEach(function (column, index) {
        var cell = row.querySelector('td[data-column="' + column + '"]');
        var raw = cell ? cell.getAttribute("data-value") : "";
        values[index].push(raw === "" || raw === null ? null : Number(raw));
      });
    });
    return {names: names, categories: categories, values: values};
  }

  function option(data, unit, kind, narrow) {
    var rate = unit === "rate";
    var scaled = function (value) {
      return value === null ? null : (rate ? Math.round(value * 10000) / 100 : value);
    };
    var valueAxis = {type: "value", max: rate ? 100 : null, minInterval: rate ? 0 : 1,
                     axisLabel: {formatter: rate ? "{value}%" : "{value}"}};
    var horizontal = kind === "hbar";
    // on a phone, several names under the bars would run into each other: slanted
    var slanted = narrow && !horizontal && data.categories.length > 2;
    var categoryAxis = {type: "category", data: data.categories,
                        axisLabel: {interval: 0, width: slanted ? 80 : 90, overflow: "truncate",
                                    rotate: slanted ? 40 : 0}};
    return {
      animation: false,
      color: COLOURS,
      grid: {left: 8, right: horizontal ? 64 : 24, top: data.names.length > 1 ? 36 : 12, bottom: 8,
             containLabel: true},
      legend: data.names.length > 1 ? {top: 0, data: data.names} : undefined,
      tooltip: {trigger: "axis", renderMode: "richText", axisPointer: {type: "shadow"},
                valueFormatter: function (value) {
                  return value === null || value === undefined ? "—" : value + (rate ? "%" : "");
                }},
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? Object.assign({}, categoryAxis, {inverse: true}) : valueAxis,
      series: data.names.map(function (name, index) {
        return {name: name, type: "bar", stack: kind === "stack" ? "all" : undefined,
                barMaxWidth: 36, data: data.values[index].map(scaled),
                label: {show: horizontal, position: "right",
                        formatter: function (item) {
                          return item.value === null ? "—" : item.value + (rate ? "%" : "");
                        }}};
      })
    };
  }

  var charts = [];
  Array.prototype.forEach.call(document.querySelectorAll(".chart[data-table]"), function (box) {
    var table = document.getElementById(box.getAttribute("data-table"));
    if (!table) { return; }
    var data = read(table, box.getAttribute("data-columns").split(","));
    box.hidden = false;
    box.classList.add("kind-" + box.getAttribute("data-kind"));
    var chart = window.echarts.init(box, null, {renderer: "canvas"});
    chart.setOption(option(data, box.getAttribute("data-unit"), box.getAttribute("data-kind"),
                           box.clientWidth < 560));
    charts.push(chart);
    var details = table.closest("details");
    if (details) { details.open = false; }
  });
  window.addEventListener("resize", function () {
    charts.forEach(function (chart) { chart.resize(); });
  });
  document.documentElement.setAttribute("data-charts", String(charts.length));
}());
