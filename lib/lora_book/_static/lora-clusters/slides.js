/* The chapters' lecture slides (lora_book.slides): reveal.js on 1280x720 slides, every
   slide laid out at once (so that MathJax measures each formula where it is shown), and
   each slide whose content is larger than the slide set in a smaller font until it fits.
   `window.loraDeck` resolves, and <html data-deck-ready> is set, once that is done. */
(function () {
  "use strict";
  var WIDTH = 1280, HEIGHT = 720, SMALLEST = 0.3, STEP = 0.92;

  function loaded() {
    return new Promise(function (done) {
      if (document.readyState === "complete") done();
      else window.addEventListener("load", function () { done(); });
    });
  }

  function typeset() {
    var mj = window.MathJax;
    if (!mj || !mj.startup || !mj.startup.promise) return Promise.resolve();
    return mj.startup.promise.then(function () { return mj.typesetPromise ? mj.typesetPromise() : null; });
  }

  // the elements of a slide whose boxes are measured: a formula counts as a whole, by
  // its typeset math (a displayed formula's container is as wide as the text column
  // whatever it holds); MathJax's hidden copy of it for screen readers does not count
  function measured(el) {
    if (el.closest("mjx-assistive-mml")) return false;
    var formula = el.parentElement && el.parentElement.closest("mjx-container");
    return !formula || el.tagName === "MJX-MATH";
  }

  // what sticks out of a slide: its content taller than the slide, or any element (a
  // formula, an image, a word) past the slide's edges
  function overflows(section) {
    if (section.offsetHeight > HEIGHT + 1) return true;
    var box = section.getBoundingClientRect();
    var scale = box.width / section.offsetWidth || 1;
    var bottom = box.top + HEIGHT * scale;
    var parts = section.querySelectorAll("*");
    for (var k = 0; k < parts.length; k++) {
      if (!measured(parts[k])) continue;
      var r = parts[k].getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.left < box.left - scale || r.right > box.right + scale || r.bottom > bottom + scale) return true;
    }
    return false;
  }

  function fit(section) {
    var shown = section.style.display;
    section.style.display = "block";
    section.style.fontSize = "";
    var base = parseFloat(getComputedStyle(section).fontSize);
    var factor = 1;
    while (overflows(section) && factor > SMALLEST) {
      factor *= STEP;
      section.style.fontSize = (base * factor).toFixed(2) + "px";
    }
    section.setAttribute("data-fit", factor.toFixed(3));
    section.style.display = shown;
  }

  var ready = Reveal.initialize({
    width: WIDTH,
    height: HEIGHT,
    margin: 0.04,
    hash: true,
    center: true,
    transition: "none",
    backgroundTransition: "none",
    slideNumber: "c/t",
    controlsTutorial: false,
    // every slide is laid out (and typeset) from the start; the decks are short
    viewDistance: 1000,
    mobileViewDistance: 1000,
  });

  window.loraDeck = ready
    .then(loaded)
    .then(typeset)
    .then(function () {
      var slides = document.querySelectorAll(".reveal .slides > section");
      for (var k = 0; k < slides.length; k++) fit(slides[k]);
      Reveal.layout();
      document.documentElement.setAttribute("data-deck-ready", String(slides.length));
    });
})();
