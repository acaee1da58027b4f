"""Losses shared by every model (one place, no per-model copies)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from searec.ops import weigh_blocks


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """-mean log sigmoid(pos - neg), computed stably."""
    return -F.logsigmoid(pos - neg).mean()


def bpr_dot_loss(u: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """BPR with dot-product scores: users u against positive and negative item vectors."""
    return bpr_loss((u * pos).sum(1), (u * neg).sum(1))


class _IndexedBPR(torch.autograd.Function):
    """BPR on rows gathered from whole tables, without keeping the gathered rows.

    ``bpr_dot_loss(users_t[u], items_t[p], items_t[n])`` keeps three batch x width copies
    (and their gradients) alive through the backward pass: with the batches full-graph
    models train with at scale (hundreds of thousands of rows, 384 columns for SEA's
    three 128-d modalities) that was the largest allocation of a step. Here the scores
    are computed in chunks of rows and the backward pass gathers again, chunk by chunk,
    adding each row's gradient straight into the tables' gradients.

    With ``user_weights`` (users x B) a user's row is its table row's B column blocks,
    each times its weight, formed only for the gathered rows: the weighted users x width
    table (SEA's per-user modality weights; 1.5 GB at 1M users and 384 columns) and its
    gradient never exist.
    """

    @staticmethod
    def forward(ctx, user_table: torch.Tensor, item_table: torch.Tensor,  # type: ignore[override]
                users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor,
                chunk: int, user_weights: torch.Tensor | None) -> torch.Tensor:
        # tables of two precisions (a bf16 autocast output beside a float32 one) score
        # in the wider one, and each gradient comes back in its table's own
        diff = user_table.new_empty(len(users), dtype=torch.promote_types(
            user_table.dtype, item_table.dtype))
        for s in range(0, len(users), chunk):
            u = _user_rows(user_table, user_weights, users[s : s + chunk])
            # the same arithmetic as bpr_dot_loss: two dot products, then their difference
            diff[s : s + chunk] = ((u * item_table[pos[s : s + chunk]]).sum(1)
                                   - (u * item_table[neg[s : s + chunk]]).sum(1))
        ctx.save_for_backward(user_table, item_table, users, pos, neg, diff, user_weights)
        ctx.chunk = chunk
        return -F.logsigmoid(diff).mean()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        user_table, item_table, users, pos, neg, diff, weights = ctx.saved_tensors
        # d/d diff of -mean log sigmoid(diff) = -sigmoid(-diff) / batch
        coef = (torch.sigmoid(-diff) * (-grad / len(diff))).unsqueeze(1)
        need_users, need_items = ctx.needs_input_grad[:2]
        need_weights = weights is not None and ctx.needs_input_grad[6]
        # summed in the scores' precision, returned in each table's own
        grad_users = torch.zeros_like(user_table, dtype=diff.dtype) if need_users else None
        grad_items = torch.zeros_like(item_table, dtype=diff.dtype) if need_items else None
        grad_weights = torch.zeros_like(weights) if need_weights else None
        for s in range(0, len(users), ctx.chunk):
            c = coef[s : s + ctx.chunk]
            u, p, n = users[s : s + ctx.chunk], pos[s : s + ctx.chunk], neg[s : s + ctx.chunk]
            if grad_users is not None or grad_weights is not None:
                # of the (weighted) user rows, in the scores' precision
                row_grad = c * (item_table[p].to(c.dtype) - item_table[n].to(c.dtype))
                if weights is None:
                    grad_users.index_add_(0, u, row_grad)  # type: ignore[union-attr]
                else:
                    if grad_weights is not None:
                        blocks = row_grad.view(len(u), weights.shape[1], -1)
                        table_rows = user_table[u].view_as(blocks)
                        grad_weights.index_add_(
                            0, u, (blocks * table_rows).sum(2).to(weights.dtype))
                    if grad_users is not None:
                        grad_users.index_add_(0, u, weigh_blocks(row_grad, weights[u]))
            if grad_items is not None:
                row = c * _user_rows(user_table, weights, u)
                grad_items.index_add_(0, p, row)
                grad_items.index_add_(0, n, -row)
        return (None if grad_users is None else grad_users.to(user_table.dtype),
                None if grad_items is None else grad_items.to(item_table.dtype),
                None, None, None, None, grad_weights)


def _user_rows(table: torch.Tensor, weights: torch.Tensor | None,
               index: torch.Tensor) -> torch.Tensor:
    """table[index], each row's column blocks times its weights when there are any."""
    rows = table[index]
    return rows if weights is None else weigh_blocks(rows, weights[index])


def bpr_indexed_loss(user_table: torch.Tensor, item_table: torch.Tensor, users: torch.Tensor,
                     pos: torch.Tensor, neg: torch.Tensor,
                     chunk_elements: int = 1 << 22,
                     user_weights: torch.Tensor | None = None) -> torch.Tensor:
    """``bpr_dot_loss(user_table[users], item_table[pos], item_table[neg])`` in memory that
    does not grow with batch x width: rows are gathered ``chunk_elements`` values at a time
    in both passes (see :class:`_IndexedBPR`). ``user_weights`` (users x B): the user
    table is read as ``searec.ops.scale_blocks(user_table, user_weights)`` (column block
    b of row n times ``user_weights[n, b]``) without forming it; both get gradients. Not
    twice differentiable."""
    if user_table.shape[1] != item_table.shape[1]:
        raise ValueError(f"user and item tables differ in width: {user_table.shape[1]} vs "
                         f"{item_table.shape[1]}")
    if user_weights is not None and (
            user_weights.dim() != 2 or user_weights.shape[0] != user_table.shape[0]
            or user_table.shape[1] % max(user_weights.shape[1], 1)):
        raise ValueError(f"user_weights must be (users, B) with B dividing the width, got "
                         f"{tuple(user_weights.shape)} for a table of "
                         f"{tuple(user_table.shape)}")
    chunk = max(1, chunk_elements // max(1, user_table.shape[1]))
    return _IndexedBPR.apply(user_table, item_table, users, pos, neg, chunk, user_weights)


def l2_penalty(*tensors: torch.Tensor) -> torch.Tensor:
    """Sum of squared L2 norms of the given (batch) tensors, divided by the batch size."""
    batch = tensors[0].shape[0]
    return sum(t.pow(2).sum() for t in tensors) / (2.0 * batch)  # type: ignore[return-value]


def cosine_distance(online: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - mean cosine similarity of paired rows (bootstrapped models' view loss)."""
    return 1.0 - F.cosine_similarity(online, target, dim=-1).mean()


def embedding_norm_penalty(*tables: torch.Tensor) -> torch.Tensor:
    """MMRec's EmbLoss: the sum of the tables' Frobenius norms (not squared), divided by
    the number of rows of the last one."""
    return sum(torch.linalg.norm(t) for t in tables) / tables[-1].shape[0]  # type: ignore[return-value]


# largest logit bound for which exp(logit), summed over a table, stays far from float32's
# overflow (exp(88)); half-precision callers are not expected here
_EXP_SAFE = 60.0


def contrast_with_table(anchor: torch.Tensor, positive: torch.Tensor, table: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """sum_i -log softmax over the rows of ``table`` of cos(anchor_i, .) / temperature,
    taken at ``positive_i`` (a row of the table): LGMRec's hypergraph contrastive loss,
    summed over the batch as in MMRec."""
    a, p, t = (F.normalize(x, dim=1) for x in (anchor, positive, table))
    a = a / temperature  # on the batch rows, not on the batch x table logits
    log_total = _log_sum_exp_rows(a @ t.T, temperature)
    return (log_total - (a * p).sum(dim=1)).sum()


def _log_sum_exp_rows(logits: torch.Tensor, temperature: float,
                      dtype: torch.dtype | None = None) -> torch.Tensor:
    """log sum_j exp(logits_ij) of cosine logits / temperature (summed in ``dtype``).

    Unit rows bound the logits by 1 / temperature, so below the exp-safe bound exp cannot
    overflow and logsumexp's max-shift (two more passes over the n x m logits, forward
    and back) is not needed: about 30% less time for LGMRec's loss on CPU."""
    if 1.0 / temperature <= _EXP_SAFE:
        return torch.exp(logits).sum(dim=1, dtype=dtype).log()
    return torch.logsumexp(logits if dtype is None else logits.to(dtype), dim=1)


def one_way_infonce(anchor: torch.Tensor, other: torch.Tensor,
                    temperature: float) -> torch.Tensor:
    """In-batch contrastive loss in one direction: row i of ``anchor`` should pick row i
    of ``other`` among all of its rows (cosine logits / temperature), mean over rows:
    -mean_i log_softmax(logits)[i, i], as log(sum_j exp(logits_ij)) - <a_i, o_i>.

    Written so, the n x n work is one product, exp and a row sum (the temperature divides
    the anchor rows, the positives come from the rows themselves): ``log_softmax`` and
    ``diagonal`` also divided the logits, shifted them by their maxima and, backward,
    filled an n x n zero gradient for the diagonal. The sums run in at least float32."""
    a = F.normalize(anchor, dim=1) / temperature
    o = F.normalize(other, dim=1)
    logits = a @ o.T
    log_total = _log_sum_exp_rows(logits, temperature,
                                  torch.promote_types(logits.dtype, torch.float32))
    return (log_total - (a * o).sum(dim=1, dtype=log_total.dtype)).mean()
