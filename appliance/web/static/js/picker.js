/* The member picker filters as one types; without JS the same list is filtered by the GET form (?q=). */
(function () {
  "use strict";
  var input = document.getElementById("picker-q");
  var count = document.getElementById("picker-count");
  var none = document.getElementById("picker-none");
  if (!input) { return; }
  function filter() {
    var parts = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    Array.prototype.forEach.call(document.querySelectorAll(".picker-group"), function (group) {
      var visible = 0;
      Array.prototype.forEach.call(group.querySelectorAll("li[data-name]"), function (li) {
        var name = li.getAttribute("data-name");
        var ok = parts.every(function (p) { return name.indexOf(p) >= 0; });
        li.hidden = !ok;
        if (ok) { visible += 1; }
      });
      group.hidden = visible === 0;
      shown += visible;
    });
    if (none) { none.hidden = shown > 0; }
    if (count) { count.textContent = count.getAttribute("data-count").replace("{n}", String(shown)); }
  }
  input.addEventListener("input", filter);
}());
