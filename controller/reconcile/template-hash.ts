// The template hash labelled on every replica (TEMPLATE_HASH) is the API's: one implementation,
// so the reconciler and anything else that reads the label agree.
export { templateHash } from '../api/validate.js';
