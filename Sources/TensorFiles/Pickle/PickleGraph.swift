/// Walks over the object graphs a pickle builds, without recursion: the check that none holds itself or nests
/// too deeply, and the teardown that frees a hostile graph of any depth.
///
/// A pickle can share one container in many places (a 600-byte pickle can describe 2^40 paths through 80
/// lists) and can make a list hold itself, so every walk here visits each container once, by identity.
enum PickleGraph {
    /// A container's identity (lists, dicts and objects by reference; a non-empty tuple by its storage), nil for
    /// values that hold nothing.
    static func identity(_ value: PickleValue) -> UInt? {
        switch value {
        case .list(let l): UInt(bitPattern: ObjectIdentifier(l))
        case .dict(let d): UInt(bitPattern: ObjectIdentifier(d))
        case .object(let o): UInt(bitPattern: ObjectIdentifier(o))
        case .tuple(let t) where !t.isEmpty: t.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
        default: nil
        }
    }

    /// The values a container holds (keys too).
    static func children(_ value: PickleValue) -> [PickleValue] {
        switch value {
        case .tuple(let t): t
        case .list(let l): l.items
        case .dict(let d): d.items.flatMap { [$0.key, $0.value] } + [d.attributes]
        case .object(let o): o.arguments + [o.state] + o.listItems + o.dictItems.flatMap { [$0.key, $0.value] }
        default: []
        }
    }

    /// Throws when a container holds itself (directly or further down) or when containers nest deeper than
    /// `maxDepth` below any root. Visits each container once.
    static func check(roots: [PickleValue], maxDepth: Int, path: String) throws {
        struct Frame {
            var id: UInt
            var children: [PickleValue]
            var next = 0
            var tallestChild = 0
        }
        var height: [UInt: Int] = [:]  // levels of containers from a finished container down, itself included
        var onPath = Set<UInt>()
        func tooDeep() -> TensorFileError {
            TensorFileError(path: path, "pickle: containers nest more than \(maxDepth) deep; checkpoints never nest so deeply")
        }
        for root in roots {
            guard let rootID = identity(root), height[rootID] == nil else { continue }
            var frames = [Frame(id: rootID, children: children(root))]
            onPath.insert(rootID)
            while let last = frames.indices.last {
                if frames[last].next < frames[last].children.count {
                    let child = frames[last].children[frames[last].next]
                    frames[last].next += 1
                    guard let id = identity(child) else { continue }
                    if let h = height[id] {
                        guard frames.count + h <= maxDepth else { throw tooDeep() }
                        frames[last].tallestChild = max(frames[last].tallestChild, h)
                        continue
                    }
                    guard !onPath.contains(id) else {
                        throw TensorFileError(path: path, "pickle: a container holds itself (a cycle); checkpoints never do")
                    }
                    guard frames.count < maxDepth else { throw tooDeep() }
                    frames.append(Frame(id: id, children: children(child)))
                    onPath.insert(id)
                } else {
                    let done = frames.removeLast()
                    onPath.remove(done.id)
                    height[done.id] = done.tallestChild + 1
                    if let parent = frames.indices.last {
                        frames[parent].tallestChild = max(frames[parent].tallestChild, done.tallestChild + 1)
                    }
                }
            }
        }
    }

    /// Takes graphs apart from the top without recursion, so that freeing them never recurses deeply either:
    /// every list, dict and object is emptied once its contents are held by the work list. (Tuples cannot be
    /// emptied, but the machine never lets them nest deeply.)
    static func dismantle(_ roots: [PickleValue]) {
        var work = roots
        var seen = Set<UInt>()
        while let value = work.popLast() {
            guard let id = identity(value), seen.insert(id).inserted else { continue }
            switch value {
            case .tuple(let t): work += t
            case .list(let l):
                work += l.items
                l.items = []
            case .dict(let d):
                work += d.items.flatMap { [$0.key, $0.value] } + [d.attributes]
                d.removeAll()
            case .object(let o):
                work += o.arguments + [o.state] + o.listItems + o.dictItems.flatMap { [$0.key, $0.value] }
                o.arguments = []
                o.state = .none
                o.listItems = []
                o.dictItems = []
            default: break
            }
        }
    }
}
