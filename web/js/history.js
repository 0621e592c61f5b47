// Undo and redo by whole-document snapshots: simple, and exact for every kind of edit.

const LIMIT = 200;

export class UndoStack {
  constructor() {
    this.undoStack = [];
    this.redoStack = [];
  }

  // Call before an edit with the document as it is now.
  record(snapshot) {
    const text = JSON.stringify(snapshot);
    if (this.undoStack[this.undoStack.length - 1] === text) return;
    this.undoStack.push(text);
    if (this.undoStack.length > LIMIT) this.undoStack.shift();
    this.redoStack.length = 0;
  }

  // Return the document to restore, or null; `current` is the document before undoing.
  undo(current) {
    if (!this.undoStack.length) return null;
    this.redoStack.push(JSON.stringify(current));
    return JSON.parse(this.undoStack.pop());
  }

  redo(current) {
    if (!this.redoStack.length) return null;
    this.undoStack.push(JSON.stringify(current));
    return JSON.parse(this.redoStack.pop());
  }

  clear() {
    this.undoStack.length = 0;
    this.redoStack.length = 0;
  }
}
