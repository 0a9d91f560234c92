// The Linkway dashboard. The bearer token lives in this tab's sessionStorage and goes out
// only as an Authorization header to this server (the page's CSP allows no other); it is
// never put in a URL or a cookie. Each panel is fetched on its own, so one that fails or
// is not on this server says so in its place and the others still draw.
"use strict";

(function () {
  const KEY = "linkway.dashboard.token";
  const $ = (selector, root) => (root || document).querySelector(selector);
  const UNITS = {
    pounds: (v) => "£" + Number(v).toLocaleString("en-GB", { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
    episodes: (v) => Number(v).toLocaleString("en-GB"),
    people: (v) => Number(v).toLocaleString("en-GB"),
    minutes: (v) => Number(v).toLocaleString("en-GB") + " min",
    per_person: (v) => Number(v).toLocaleString("en-GB", { maximumFractionDigits: 2 }),
  };
  const COLOURS = ["#005eb8", "#41b6e6", "#007f3b", "#d5281b", "#ffb81c", "#330072"];

  function token() {
    return sessionStorage.getItem(KEY);
  }

  function claims(jwt) {
    // For the "signed in as" line only: the server verifies the token on every request.
    try {
      const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (e) {
      return {};
    }
  }

  async function get(url) {
    return fetch(url, {
      headers: { Authorization: "Bearer " + token(), Accept: "application/json, text/csv" },
      cache: "no-store",
      credentials: "omit",
      referrerPolicy: "no-referrer",
    });
  }

  function filterQuery() {
    // The filter form as GET /reports/{kpi}'s query string (a disabled field is not sent).
    const query = new URLSearchParams();
    for (const [name, value] of new FormData($("#filters"))) {
      const text = String(value).trim();
      if (text) query.set(name, text);
    }
    const text = query.toString();
    return text ? "?" + text : "";
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    $("#filters").reset();
    document.querySelectorAll("#filters datalist").forEach((list) => list.replaceChildren());
    $("#filter-partner").disabled = false;
    $("#board").hidden = true;
    $("#who").hidden = true;
    $("#sign-out").hidden = true;
    $("#sign-in").hidden = false;
    const problem = $("#sign-in-problem");
    problem.textContent = message || "";
    problem.hidden = !message;
  }

  function status(section, state, text) {
    section.dataset.state = state;
    section.setAttribute("aria-busy", "false");
    const line = $(".status", section);
    line.textContent = text || "";
    line.hidden = !text;
    line.className = state === "ready" ? "status" : "status problem";
    if (state !== "ready") {
      $(".chart", section).hidden = true;
    }
  }

  function reset(section) {
    // Before a panel is fetched again (other filters): no old chart, table or links.
    const old = typeof Chart === "undefined" ? null : Chart.getChart($("canvas", section));
    if (old) old.destroy();
    section.setAttribute("aria-busy", "true");
    section.dataset.state = "loading";
    const line = $(".status", section);
    line.textContent = "Loading\u2026";
    line.hidden = false;
    line.className = "status";
    $(".chart", section).hidden = false;
    $("table.numbers", section).hidden = true;
    $(".links", section).replaceChildren();
  }

  function link(href, text, cls) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (cls) a.className = cls;
    return a;
  }

  function table(section, panel) {
    const format = UNITS[panel.unit] || String;
    const t = $("table.numbers", section);
    t.replaceChildren();
    const head = t.createTHead().insertRow();
    for (const name of ["", ...panel.series.map((s) => s.name)]) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    }
    const body = t.createTBody();
    panel.labels.forEach((label, i) => {
      const row = body.insertRow();
      const th = document.createElement("th");
      th.textContent = label;
      row.appendChild(th);
      for (const s of panel.series) {
        const value = s.values[i];
        const cell = row.insertCell();
        cell.dataset.series = s.name;
        cell.appendChild(link(panel.definition, value === null ? "<5" : format(value), "number"));
      }
    });
    t.hidden = panel.labels.length === 0;
  }

  function chart(section, panel) {
    const canvas = $("canvas", section);
    const horizontal = panel.panel === "funnel";
    const format = UNITS[panel.unit] || String;
    const datasets = panel.series.map((s, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const set = { label: s.name, data: s.values, backgroundColor: colour, borderColor: colour };
      if (s.kind === "bar") return { ...set, type: "bar", maxBarThickness: 48 };
      if (s.kind === "line") return { ...set, type: "line", pointRadius: 3 };
      // A limit (a cap): a wide dash at each label, which reads as a ceiling even for a
      // single month, where a line would be a lone dot.
      return { ...set, type: "line", showLine: false, pointStyle: "line", pointRadius: 28, pointBorderWidth: 3 };
    });
    const valueAxis = { beginAtZero: true, ticks: { callback: (v) => format(v) } };
    new Chart(canvas, {
      type: "bar",
      data: { labels: panel.labels, datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: horizontal ? "y" : "x",
        scales: horizontal ? { x: valueAxis } : { y: valueAxis },
        plugins: { legend: { display: datasets.length > 1 } },
      },
    });
  }

  async function downloadCsv(event) {
    // A plain link cannot carry the Authorization header: fetch it, then save it.
    event.preventDefault();
    const a = event.currentTarget;
    const answer = await get(a.href);
    if (answer.status === 401) return signOut("Your token has expired or is not valid: sign in again.");
    if (!answer.ok) {
      a.textContent = "CSV not available (HTTP " + answer.status + ")";
      return;
    }
    const disposition = answer.headers.get("Content-Disposition") || "";
    const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "linkway.csv";
    const url = URL.createObjectURL(await answer.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = name;
    document.body.appendChild(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  async function loadPanel(section) {
    reset(section);
    const url = "/dashboard/panels/" + section.dataset.panel + filterQuery();
    let answer;
    try {
      answer = await get(url);
    } catch (e) {
      return status(section, "error", "Could not reach the server.");
    }
    if (answer.status === 401) return signOut("Your token has expired or is not valid: sign in again.");
    if (answer.status === 403) return status(section, "error", "Not open to your role.");
    if (answer.status === 422) {
      let detail = "";
      try {
        detail = (await answer.json()).detail || "";
      } catch (e) {}
      return status(section, "error", "The filters were not accepted: " + detail);
    }
    if (!answer.ok) {
      return status(section, "unavailable", "Not available on this server (GET " + url + " answered " + answer.status + ").");
    }
    let panel;
    try {
      panel = await answer.json();
    } catch (e) {
      return status(section, "error", "The server's answer could not be read.");
    }
    const links = $(".links", section);
    links.replaceChildren(link(panel.definition, "Definition", "definition"));
    if (!panel.available) {
      return status(section, "unavailable", "Not available yet: " + panel.reason + ".");
    }
    const csv = link(panel.csv, "CSV", "csv");
    csv.addEventListener("click", downloadCsv);
    links.append(" · ", csv, " · Source: " + panel.source);
    const notes = [...panel.notes];
    if (panel.suppressed) notes.push(panel.suppressed + " value(s) under 5 hidden.");
    if (panel.labels.length === 0) {
      status(section, "ready", "Nothing to show yet.");
      $(".chart", section).hidden = true;
    } else if (typeof Chart === "undefined") {
      // The chart library did not load: the numbers still show, in the table.
      status(section, "ready", [...notes, "The chart could not be drawn."].join(" "));
      $(".chart", section).hidden = true;
    } else {
      status(section, "ready", notes.join(" "));
      chart(section, panel);
    }
    table(section, panel);
  }

  function loadAll() {
    document.querySelectorAll("section.panel").forEach(loadPanel);
  }

  async function loadChoices() {
    // Each filter's values in the caller's reports, offered as the field's suggestions.
    // Without them (an older server, a failure) the fields are plain text, as before.
    let answer;
    try {
      answer = await get("/reports/filters");
    } catch (e) {
      return;
    }
    if (answer.status === 401) return signOut("Your token has expired or is not valid: sign in again.");
    if (!answer.ok) return;
    let found;
    try {
      found = await answer.json();
    } catch (e) {
      return;
    }
    for (const [name, values] of Object.entries(found)) {
      const list = document.getElementById("choices-" + name);
      if (!list || !Array.isArray(values)) continue;
      list.replaceChildren(
        ...values.map((value) => {
          const option = document.createElement("option");
          option.value = String(value);
          return option;
        }),
      );
    }
  }

  function showBoard() {
    const who = claims(token());
    $("#who").textContent = "Signed in: " + (who.role || "?") + " · " + (who.partner || "?");
    // A Tier One partner sees its own partner whatever is asked (the server decides);
    // the field says so rather than offering a choice that changes nothing.
    const partner = $("#filter-partner");
    const own = who.role === "tier_one";
    partner.disabled = own;
    partner.value = own ? who.partner || "" : partner.value;
    const note = $("#filters-note");
    note.textContent = own ? "Your own partner's numbers only." : "";
    note.hidden = !own;
    $("#who").hidden = false;
    $("#sign-out").hidden = false;
    $("#sign-in").hidden = true;
    $("#board").hidden = false;
    loadChoices();
    loadAll();
  }

  $("#sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    const field = $("#token");
    const value = field.value.trim().replace(/^Bearer\s+/i, "");
    field.value = "";
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("#sign-in-problem").hidden = true;
    showBoard();
  });
  $("#sign-out").addEventListener("click", () => signOut());
  $("#filters").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAll();
  });
  $("#filters").addEventListener("reset", () => {
    // After the form has cleared its fields (a Tier One partner keeps its own).
    setTimeout(() => {
      if (!token()) return; // signed out: nothing to fetch
      if ($("#filter-partner").disabled) $("#filter-partner").value = claims(token()).partner || "";
      loadAll();
    });
  });

  if (token()) showBoard();
})();
