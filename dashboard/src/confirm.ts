// Asking before anything is deleted: a modal <dialog> (focus moves in and is kept there, Escape
// cancels, focus returns to what opened it), with the text about to go quoted. Cancel has the
// focus first, so Enter alone never deletes.
import { h, longText, uid } from './dom.ts';

export function confirmDelete(o: { title: string; quote: string; detail: string; confirm: string }): Promise<boolean> {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const titleId = uid('confirm-title');
  const detailId = uid('confirm-detail');
  const cancel = h('button', { type: 'button', class: 'button button-quiet' }, 'Cancel');
  const ok = h('button', { type: 'button', class: 'button button-danger' }, o.confirm);
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': titleId, 'aria-describedby': detailId },
    h('h2', { id: titleId }, o.title),
    h('blockquote', { class: 'confirm-quote' }, longText(o.quote, 'confirm-text')),
    h('p', { id: detailId }, o.detail),
    h('div', { class: 'confirm-actions' }, cancel, ok));
  return new Promise((resolve) => {
    cancel.addEventListener('click', () => dialog.close('cancel'));
    ok.addEventListener('click', () => dialog.close('confirm'));
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener?.isConnected) opener.focus();
      resolve(dialog.returnValue === 'confirm');
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}
