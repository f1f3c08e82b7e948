
(function () {
  var sections = Array.prototype.slice.call(document.querySelectorAll("main > section"));
  var links = Array.prototype.slice.call(document.querySelectorAll("nav a"));
  function show(id) {
    if (!document.getElementById(id)) { id = sections.length ? sections[0].id : ""; }
    sections.forEach(function (s) { s.hidden = s.id !== id; });
    links.forEach(function (a) { a.classList.toggle("current", a.getAttribute("href") === "#" + id); });
  }
  links.forEach(function (a) {
    a.addEventListener("click", function (e) { e.preventDefault(); var id = a.getAttribute("href").slice(1); history.replaceState(null, "", "#" + id); show(id); window.scrollTo(0, 0); });
  });
  Array.prototype.slice.call(document.querySelectorAll(".legend input")).forEach(function (box) {
    function apply() { document.body.classList.toggle("hide-" + box.value, !box.checked); }
    box.addEventListener("change", apply); apply();
  });
  document.addEventListener("click", function (e) {
    var item = e.target.closest ? e.target.closest(".item[data-target]") : null;
    if (!item) { return; }
    var target = item.getAttribute("data-target");
    var marks = document.querySelectorAll('[data-ann="' + CSS.escape(target) + '"], [data-group="' + CSS.escape(target) + '"]');
    if (!marks.length) { return; }
    marks[0].scrollIntoView({ block: "center", behavior: "smooth" });
    Array.prototype.forEach.call(marks, function (m) { m.classList.remove("flash"); void m.offsetWidth; m.classList.add("flash"); });
  });
  show(location.hash ? location.hash.slice(1) : "");
})();
