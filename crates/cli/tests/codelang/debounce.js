'use strict';

/**
 * Calls `fn` once calls have stopped for `wait` milliseconds; written for a test.
 * @param {Function} fn
 * @param {number} wait
 * @returns {Function}
 */
function debounce(fn, wait) {
  let timer = null;
  let lastArgs = [];
  const debounced = function (...args) {
    lastArgs = args;
    if (timer !== null) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => {
      timer = null;
      fn.apply(this, lastArgs);
    }, wait);
  };
  debounced.cancel = () => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
  };
  return debounced;
}

const counts = new Map();
const record = debounce((word) => {
  counts.set(word, (counts.get(word) || 0) + 1);
  console.log(`${word}: ${counts.get(word)}`);
}, 50);

document.querySelectorAll('input[data-track]').forEach((el) => {
  el.addEventListener('input', (event) => record(event.target.value));
});

module.exports = { debounce };
