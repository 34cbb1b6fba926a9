// A growable circular buffer (power-of-two capacity) with O(1) push/pop at
// both ends and O(k) insertion k places from the back. Not thread-safe.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace sluice {
namespace rules {

template <typename T>
class Ring {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) { return buf_[(head_ + i) & mask_]; }
  const T& operator[](size_t i) const { return buf_[(head_ + i) & mask_]; }
  T& front() { return buf_[head_]; }
  const T& front() const { return buf_[head_]; }
  T& back() { return (*this)[size_ - 1]; }
  const T& back() const { return (*this)[size_ - 1]; }

  void clear() {
    head_ = 0;
    size_ = 0;
  }

  void push_back(const T& v) {
    if (size_ == buf_.size()) Grow();
    buf_[(head_ + size_) & mask_] = v;
    ++size_;
  }

  // REQUIRES: !empty().
  void pop_front() {
    head_ = (head_ + 1) & mask_;
    --size_;
  }
  void pop_back() { --size_; }

  // Inserts v before position pos (0 <= pos <= size()), shifting the
  // size() - pos later elements back by one.
  void insert(size_t pos, const T& v) {
    if (size_ == buf_.size()) Grow();
    for (size_t i = size_; i > pos; --i) (*this)[i] = (*this)[i - 1];
    (*this)[pos] = v;
    ++size_;
  }

  // Replaces elements [first, last) with the single element v.
  void replace(size_t first, size_t last, const T& v) {
    if (first == last) {
      insert(first, v);
      return;
    }
    (*this)[first] = v;
    size_t gone = last - first - 1;
    if (gone == 0) return;
    for (size_t i = first + 1; i + gone < size_; ++i) (*this)[i] = (*this)[i + gone];
    size_ -= gone;
  }

 private:
  void Grow() {
    size_t cap = buf_.empty() ? 16 : buf_.size() * 2;
    std::vector<T> next(cap);
    for (size_t i = 0; i < size_; ++i) next[i] = std::move((*this)[i]);
    buf_ = std::move(next);
    head_ = 0;
    mask_ = cap - 1;
  }

  std::vector<T> buf_;
  size_t head_ = 0;
  size_t size_ = 0;
  size_t mask_ = 0;
};

}  // namespace rules
}  // namespace sluice
