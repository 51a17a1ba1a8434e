/** The client went away (closed or reset its connection) before its request body was complete. */
export class ClientAborted extends Error {
  constructor() {
    super('the client closed the connection before its request was complete');
    this.name = 'ClientAborted';
  }
}
