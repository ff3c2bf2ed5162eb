// The viewer's only script (the Content-Security-Policy allows no other): the replay slider,
// the integrity badge, and the sessions page's live updates. Text from the journal is only
// ever set with textContent or taken from pages the server escaped.
"use strict";

function replaySlider() {
  const slider = document.getElementById("slider");
  const field = document.getElementById("at");
  if (!slider || !field) return;
  slider.addEventListener("input", () => { field.value = slider.value; });
  slider.addEventListener("change", () => {
    field.value = slider.value;
    slider.form.requestSubmit();
  });
}

async function badge() {
  const el = document.getElementById("badge");
  if (!el || !el.dataset.url) return;  // a damaged session's page says it already
  try {
    const answer = await fetch(el.dataset.url, { credentials: "same-origin" });
    const report = await answer.json();
    el.classList.remove("checking");
    if (answer.ok && report.ok) {
      el.classList.add("ok");
      el.textContent = "✔ verified";
    } else {
      el.classList.add("bad");
      const count = report.problems ? report.problems.length : 0;
      el.textContent = `✘ ${count} problems`;
      const link = document.createElement("a");
      link.href = `/verify?session=${encodeURIComponent(document.querySelector("h1.sid").textContent)}`;
      link.textContent = " details";
      el.appendChild(link);
    }
  } catch (err) {
    el.textContent = "integrity: unknown";
  }
}

function liveSessions() {
  const table = document.getElementById("sessions");
  if (!table || !window.EventSource) return;
  const watch = Array.from(table.querySelectorAll("tbody tr[data-id]"))
    .map((row) => `watch=${encodeURIComponent(row.dataset.id)}`);
  const source = new EventSource(`/api/changes?${watch.join("&")}`);
  let busy = false;
  source.addEventListener("change", async () => {
    if (busy) return;
    busy = true;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin" });
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.querySelector("#sessions tbody");
      const count = page.querySelector("h1 .count");
      if (fresh) table.querySelector("tbody").replaceWith(fresh);
      if (count) document.querySelector("h1 .count").textContent = count.textContent;
      const live = document.getElementById("live");
      live.hidden = false;
      live.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } finally {
      busy = false;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  replaySlider();
  badge();
  liveSessions();
});
