(function () {
  "use strict";
  // Self-check for readers and headless tests: how many images decoded, how many tables and charts rendered.
  function check() {
    var images = document.images, ok = 0;
    for (var i = 0; i < images.length; i++) {
      if (images[i].complete && images[i].naturalWidth > 0) { ok += 1; }
    }
    var body = document.body;
    body.setAttribute("data-images-ok", ok + "/" + images.length);
    body.setAttribute("data-tables", String(document.getElementsByTagName("table").length));
    body.setAttribute("data-charts", String(document.querySelectorAll("svg.chart").length));
  }
  window.addEventListener("load", check);
})();
