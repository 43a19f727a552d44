// The conformance runner as a JavaScript guest (componentize-js). It
// imports the store through the WIT interface and exports
// `sqlite-sessions:conformance/runner`; the flow logic is shared with the
// Node host runner (./flow.js).
import * as sessions from 'sqlite-sessions:store/sessions@0.1.0';
import { runFlow } from './flow.js';

export const runner = {
  run(flowJson, directory) {
    // A thrown string becomes the `err` of `result<string, string>`.
    return JSON.stringify(runFlow(sessions, flowJson, directory, 'javascript-componentize-js'));
  },
};
