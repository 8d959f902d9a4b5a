// Written by storex::ts from the store "ExampleApp.Store.Todo": export the types again after changing it.

import type { Todo } from "./Todo.js";

/** The store "ExampleApp.Store.Todo": `useStorex<TodoStore>({ store: "ExampleApp.Store.Todo" })`. */
export type TodoStore = {
  __storex: {
    name: "ExampleApp.Store.Todo";
    state: Todo;
    mutations: {
      "add": { args: [title: string]; reply: undefined };
      "toggle": { args: [id: number]; reply: undefined };
      "rename": { args: [id: number, title: string]; reply: undefined };
      "remove": { args: [id: number]; reply: undefined };
      "undo": { args: []; reply: undefined };
      "sync": { args: []; reply: undefined };
    };
  };
};
