// Built from todo.ts by esbuild (storex-runtime/js/test.sh checks it is current): edit todo.ts.
import useStorex from "/storex/storex.js";
function $(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}
const showError = (error) => {
  $("error").textContent = error.message;
  $("error").hidden = false;
};
const clearError = () => {
  $("error").hidden = true;
};
const user = new URLSearchParams(location.search).get("user");
if (user === null) {
  $("who").hidden = false;
} else {
  $("app").hidden = false;
  const todo = useStorex({ store: "ExampleApp.Store.Todo", params: { user } });
  const done = (commit) => commit.then(clearError, showError);
  const title = $("title");
  todo.subscribe(render);
  todo.onError(showError);
  todo.onConnected(() => setStatus(true));
  todo.onDisconnected(() => setStatus(false));
  $("add").onsubmit = async (event) => {
    event.preventDefault();
    const text = title.value;
    title.value = "";
    try {
      await todo.commit("add", text);
      clearError();
    } catch (error) {
      showError(error);
      if (!title.value) title.value = text;
    }
  };
  const itemId = (event) => Number(event.target.closest("li")?.dataset.id);
  $("items").onchange = (event) => {
    const input = event.target;
    if (input.type === "checkbox") done(todo.commit("toggle", itemId(event)));
    else done(todo.commit("rename", itemId(event), input.value));
  };
  $("undo").onclick = () => done(todo.commit("undo"));
  $("items").onclick = (event) => {
    if (event.target.matches(".remove")) done(todo.commit("remove", itemId(event)));
  };
}
function setStatus(connected) {
  $("status").dataset.connected = String(connected);
  $("status").textContent = connected ? "connected" : "disconnected: reconnecting\u2026";
}
function render({ user: user2, list }) {
  $("user").textContent = user2;
  $("open").textContent = String(list.open);
  $("undo").disabled = list.undoable === 0;
  $("items").replaceChildren(...list.items.map((item) => {
    const li = document.createElement("li");
    li.dataset.id = String(item.id);
    li.classList.toggle("done", item.done);
    const done = Object.assign(document.createElement("input"), { type: "checkbox", checked: item.done });
    done.setAttribute("aria-label", "done");
    const title = Object.assign(document.createElement("input"), { className: "title", value: item.title });
    title.setAttribute("aria-label", "title");
    const remove = Object.assign(document.createElement("button"), { className: "link remove", textContent: "\u2715", title: "remove" });
    li.append(done, title, remove);
    return li;
  }));
}
