// The dashboard's approvals: the panel of pending requests, their approve and deny
// actions, and the count beside an agent's name in the tree. Loaded after app.js
// (its helpers h, api, toast, select and the shared state); the list itself comes
// from the event stream (the snapshot, then an "approvals" event per change).
"use strict";

function pendingBadge(id) {
  const n = state.approvals.filter((r) => r.agent === id).length;
  return n ? h("span", { class: "pending-badge", title: n + " request(s) waiting for approval", text: n + " req" }) : null;
}

function renderApprovals() {
  const list = state.approvals;
  $("approvals-panel").dataset.count = String(list.length);
  $("approvals-count").textContent = String(list.length);
  $("no-approvals").hidden = list.length > 0;
  $("approvals").replaceChildren(...list.map((r) => {
    const budget = r.kind === "budget";
    const what = budget ? `budget of ${r.budget_of}` : r.command;
    const args = budget ? (r.args && r.args.reason) || "" : JSON.stringify(r.args || {});
    const approve = h("button", { type: "button", class: "approve", onclick: () => decide(r, true, "") }, "Approve");
    if (budget) {
      approve.disabled = true;  // the supervisor refuses it too: a budget request is met by raising the budget
      approve.title = `raise the budget: swarm budget ${r.budget_of} --tokens N (or deny to stop ${r.agent})`;
    }
    return h("div", { class: "approval", id: "approval-" + r.id, "data-agent": r.agent, "data-kind": r.kind },
      h("div", { class: "head" },
        h("a", { onclick: () => select(r.agent), text: r.agent }),
        h("span", { class: "cmd", text: what }),
        h("span", { class: "muted", text: `${r.id} · since ${fmtTime(r.since)}` }),
        h("span", { class: "spacer" }),
        approve,
        h("button", { type: "button", class: "deny danger", onclick: () => askDeny(r) }, "Deny")),
      args ? h("div", { class: "args", text: args }) : null,
      r.thoughts ? h("div", { class: "thought" }, h("b", { class: "muted", text: "thoughts: " }), r.thoughts) : null);
  }));
}

async function decide(r, approve, text) {
  const verb = approve ? "approve" : "deny";
  const body = text ? (approve ? { note: text } : { reason: text }) : {};
  try {
    await api("POST", `/api/approvals/${encodeURIComponent(r.id)}/${verb}`, body);
    toast(`${approve ? "approved" : "denied"} ${r.id} (${r.agent})`);
  } catch (err) { toast(err.message, true); }
}

function askDeny(r) {
  const dlg = $("deny-dialog");
  $("deny-text").textContent = `Deny ${r.id}: ${r.agent} ` + (r.kind === "budget"
    ? `waits for the budget of ${r.budget_of}; denied, ${r.agent} is stopped.` : `wants to run ${r.command}.`);
  $("deny-reason").value = "";
  dlg.returnValue = "";
  dlg.onclose = () => { if (dlg.returnValue === "ok") decide(r, false, $("deny-reason").value.trim()); };
  dlg.showModal();
}
