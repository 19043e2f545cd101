// shaobing — app.js: small page behaviour, no framework. Load it after htmx, both with
// `defer`, so the htmx settings below are in place before htmx initialises the page.
//
// Markup it understands (no inline scripts needed, so a strict CSP works):
//   <meta name="csrf-token" content="…">   sent as X-CSRF-Token on every htmx request
//   <button data-confirm="确定删除？">        asks before the click goes through (forms, links, htmx)
//   <select data-autosubmit>                submits its form on change (language switch, filters)
//   <button type="button" data-print>       opens the print dialog
//   <div class="chart" data-chart='{…}'>    an ECharts option as JSON; needs echarts loaded
//   <div data-region-picker>                the region picker (web/templates/_region_picker.html)
//   <form action="/login">                  the sign-in page: offline copies of pages are
//                                           forgotten (<html data-offline-pages="forgotten">)
(function () {
  "use strict";

  if (window.htmx) {
    var cfg = window.htmx.config;
    // The indicator rules live in app.css; htmx's injected <style> would break a strict CSP.
    cfg.includeIndicatorStyles = false;
    // Never keep snapshots of pages (they hold personal data) in the browser's storage;
    // back/forward reloads the page from the server instead.
    cfg.historyCacheSize = 0;
    cfg.refreshOnHistoryMiss = true;
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Read the token on every request: a boosted login swaps in a new <head> with a new token.
  document.addEventListener("htmx:configRequest", function (evt) {
    var token = csrfToken();
    if (token) {
      evt.detail.headers["X-CSRF-Token"] = token;
    }
  });

  // Capture phase on the document runs before the element's own (and htmx's) listeners,
  // so a "no" stops the form submit, the link and the htmx request alike.
  document.addEventListener("click", function (evt) {
    var el = evt.target.closest && evt.target.closest("[data-confirm]");
    if (el && !window.confirm(el.getAttribute("data-confirm"))) {
      evt.preventDefault();
      evt.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (evt) {
    var el = evt.target;
    if (el.matches && el.matches("[data-autosubmit]") && el.form) {
      if (el.form.requestSubmit) {
        el.form.requestSubmit();
      } else {
        el.form.submit();
      }
    }
  });

  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("[data-print]")) {
      evt.preventDefault();
      window.print();
    }
  });

  var palette = ["#1f5fbf", "#2e7d32", "#b26a00", "#c62828", "#6b7785", "#5b8ff9", "#9254de", "#13a8a8"];

  function initCharts(root) {
    if (!window.echarts || !root.querySelectorAll) {
      return;
    }
    var nodes = root.querySelectorAll("[data-chart]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      if (window.echarts.getInstanceByDom(el)) {
        continue;
      }
      var option;
      try {
        option = JSON.parse(el.getAttribute("data-chart"));
      } catch (e) {
        console.error("data-chart is not JSON", el, e);
        continue;
      }
      if (!option.color) {
        option.color = palette;
      }
      // SVG prints sharply and follows the page's fonts.
      var chart = window.echarts.init(el, null, {
        renderer: "svg",
        locale: (document.documentElement.lang || "zh").toLowerCase().indexOf("zh") === 0 ? "ZH" : "EN"
      });
      chart.setOption(option);
      if (window.ResizeObserver) {
        new ResizeObserver(chart.resize.bind(chart)).observe(el);
      }
    }
  }

  // Region pickers: the code input becomes hidden and the cascading selects show. A
  // choice sets the code to the deepest chosen division and empties the selects below;
  // htmx fills the next one from /regions/options.
  function initRegionPickers(root) {
    if (!root.querySelectorAll) {
      return;
    }
    var nodes = root.querySelectorAll("[data-region-picker]");
    for (var i = 0; i < nodes.length; i++) {
      var el = nodes[i];
      var selects = el.querySelector(".region-selects");
      var input = el.querySelector("input.region-code");
      if (!selects || !input || el.hasAttribute("data-ready")) {
        continue;
      }
      el.setAttribute("data-ready", "");
      input.type = "hidden";
      selects.hidden = false;
      var first = selects.querySelector("select");
      var label = input.id && document.querySelector('label[for="' + input.id + '"]');
      if (label && first) {
        label.htmlFor = first.id;
      }
    }
  }

  function pickerOf(el) {
    return el && el.tagName === "SELECT" && el.closest && el.closest("[data-region-picker][data-ready]");
  }

  document.addEventListener("change", function (evt) {
    var picker = pickerOf(evt.target);
    if (!picker) {
      return;
    }
    var all = picker.querySelectorAll(".region-selects select");
    var value = "";
    var below = false;
    for (var i = 0; i < all.length; i++) {
      if (below) {
        all[i].innerHTML = "";
        all[i].appendChild(new Option(all[i].getAttribute("data-any") || "", ""));
        all[i].disabled = true;
        continue;
      }
      if (all[i].value) {
        value = all[i].value;
      }
      below = all[i] === evt.target;
    }
    picker.querySelector("input.region-code").value = value;
  });

  // Nothing to load under "any" or the whole region (the first choice of a select).
  document.addEventListener("htmx:confirm", function (evt) {
    var el = evt.detail.elt;
    if (pickerOf(el) && el.selectedIndex <= 0) {
      evt.preventDefault();
    }
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    var el = evt.detail.target;
    if (el && el.tagName === "SELECT" && el.closest && el.closest("[data-region-picker]")) {
      el.disabled = el.options.length <= 1;
    }
  });

  function focusFirstInvalid() {
    var el = document.querySelector(".field.invalid input, .field.invalid select, .field.invalid textarea");
    if (el) {
      el.focus();
    }
  }

  // On the sign-in page (signed out, or the session ended) forget every offline copy of a
  // page: the sampler page's service worker keeps the last one, which shows the account's
  // name. The content-hashed static files stay cached, and the sampler's queue of
  // registrations not yet sent (IndexedDB, each tagged with its account) is kept.
  function forgetOfflinePages() {
    if (!window.caches || !document.querySelector('form[action="/login"]')) {
      return;
    }
    window.caches.keys().then(function (names) {
      return Promise.all(names.map(function (name) {
        return window.caches.open(name).then(function (cache) {
          return cache.keys().then(function (requests) {
            return Promise.all(requests.filter(function (req) {
              return new URL(req.url).pathname.indexOf("/static/") !== 0;
            }).map(function (req) { return cache.delete(req); }));
          });
        });
      }));
    }).then(function () {
      document.documentElement.setAttribute("data-offline-pages", "forgotten");
    }, function () {
      // No Cache Storage here (an insecure context): nothing was kept either.
      document.documentElement.setAttribute("data-offline-pages", "forgotten");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    forgetOfflinePages();
    initCharts(document);
    initRegionPickers(document);
    focusFirstInvalid();
  });
  document.addEventListener("htmx:load", function (evt) {
    initCharts(evt.target);
    initRegionPickers(evt.target);
  });
  document.addEventListener("htmx:beforeCleanupElement", function (evt) {
    if (window.echarts && evt.target.hasAttribute && evt.target.hasAttribute("data-chart")) {
      window.echarts.dispose(evt.target);
    }
  });
})();
