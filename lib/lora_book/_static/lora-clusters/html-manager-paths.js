// Loaded between require.js and the Jupyter-widgets HTML manager (see
// nb_ipywidgets_js in _config.yml).  The manager finds its fonts and styles next to
// its own AMD module, whose address RequireJS derives from the module name; without
// this mapping that address is relative to the page, where nothing is served.
(function () {
  var vendor = new URL("../vendor/html-manager", document.currentScript.src).href;
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": vendor } });
})();
