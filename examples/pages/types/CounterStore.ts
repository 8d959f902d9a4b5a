// Written by storex::ts from the store "ExampleApp.Store.Counter": export the types again after changing it.

import type { Counter } from "./Counter.js";

/** The store "ExampleApp.Store.Counter": `useStorex<CounterStore>({ store: "ExampleApp.Store.Counter" })`. */
export type CounterStore = {
  __storex: {
    name: "ExampleApp.Store.Counter";
    state: Counter;
    mutations: {
      "increase": { args: []; reply: undefined };
      "decrease": { args: []; reply: string };
      "set": { args: [number: number]; reply: undefined };
    };
  };
};
